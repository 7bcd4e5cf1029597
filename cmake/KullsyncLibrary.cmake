# kullsync_library(NAME <target> ALIAS <alias> SOURCES ...): a library with a
# public include/ folder, installed and exported as kullsync::<alias>.
function(kullsync_library)
  cmake_parse_arguments(ARG "" "NAME;ALIAS" "SOURCES" ${ARGN})
  add_library(${ARG_NAME} ${ARG_SOURCES})
  add_library(kullsync::${ARG_ALIAS} ALIAS ${ARG_NAME})
  set_target_properties(${ARG_NAME} PROPERTIES EXPORT_NAME ${ARG_ALIAS})
  target_include_directories(${ARG_NAME} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${ARG_NAME} PRIVATE $<BUILD_INTERFACE:kullsync_warnings>)
  install(TARGETS ${ARG_NAME} EXPORT kullsyncTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()
