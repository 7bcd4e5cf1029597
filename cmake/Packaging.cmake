# The Debian package of the server: `cpack -G DEB` in the build tree makes
# kullsync_<version>_<arch>.deb with kullsync-server, kullsync-console and
# kullsync-ctl, the hardened systemd unit, /etc/kullsync/server.toml (a
# conffile), the operator's docs, and the Prometheus alert rules and Grafana
# dashboard under /usr/share/kullsync; its postinst makes the kullsync user
# and, once, a JWT secret and an API key. Libraries and headers are not in it (they are for
# `cmake --install`).

install(FILES ${PROJECT_SOURCE_DIR}/packaging/kullsync-server.service
        DESTINATION lib/systemd/system COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/docs/OPERATIONS.md ${PROJECT_SOURCE_DIR}/docs/SECURITY.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/prometheus/kullsync-alerts.yml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/kullsync/prometheus COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/grafana/kullsync-dashboard.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/kullsync/grafana COMPONENT server)
# Outside the prefix: only the package installs it, never `cmake --install`.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/server.toml
        DESTINATION /etc/kullsync COMPONENT server EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kullsync)
set(CPACK_PACKAGE_VENDOR "Kull")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "kullsync: real-time sync server and console for the Kull apps")
set(CPACK_PACKAGE_CONTACT "kullsync maintainers <ops@kullai.com>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_PACKAGE_NAME kullsync)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/postinst
    ${PROJECT_SOURCE_DIR}/packaging/prerm
    ${PROJECT_SOURCE_DIR}/packaging/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_WARN_ON_ABSOLUTE_INSTALL_DESTINATION OFF)
include(CPack)
