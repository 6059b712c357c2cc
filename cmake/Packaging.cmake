# `cmake --install` and the Debian package (scripts/package): the binary,
# the example configs, a systemd unit and the docs, in the usual places.
include(GNUInstallDirs)

install(TARGETS health-bridge RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES config/examples/installed.yaml DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/health-bridge
        RENAME config.yaml)
install(FILES deploy/systemd/health-bridge.service DESTINATION lib/systemd/system)
install(FILES README.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES config/examples/full.yaml config/examples/minimal.yaml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs PATTERN "*.png" EXCLUDE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME health-bridge)
set(CPACK_PACKAGE_VENDOR "health-bridge maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "health-bridge maintainers <maintainers@users.noreply.invalid>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# Depends on the runtime libraries the binary loads, as dpkg-shlibdeps finds
# them, and on nothing else (no compiler, no -dev package).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "ca-certificates")
# The installed config is the operator's: an upgrade never overwrites it.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles)
include(CPack)
