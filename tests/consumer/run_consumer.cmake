file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
run(${WORK_DIR}/build/simulation)
run(${WORK_DIR}/build/embedded_server)
# The client engine alone links no server code: neither the server's actors
# nor its HTTP/WebSocket/TLS sockets end up in an app that embeds it.
execute_process(COMMAND nm -C ${WORK_DIR}/build/consumer OUTPUT_VARIABLE symbols
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm failed on the consumer (${rc})")
endif()
foreach(server_code "kullsync::server::" "kullsync::beast_server" "kullsync::detail::ws_connection"
                    "kullsync::detail::http_session" "kullsync::detail::io_shard"
                    "kullsync::detail::tls_session" "kullsync::detail::address_set"
                    "kullsync::detail::parse_proxy_header" "kullsync::ws::frame_reader"
                    "kullsync::run_on_io_thread")
  string(FIND "${symbols}" "${server_code}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "the client-only consumer links server code: ${server_code}")
  endif()
endforeach()
string(FIND "${symbols}" "kullsync::spawn_client" at)
if(at EQUAL -1)
  message(FATAL_ERROR "nm shows no kullsync::spawn_client in the consumer: the check reads nothing")
endif()
