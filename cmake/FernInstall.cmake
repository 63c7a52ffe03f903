# Installs the public headers, libfern.a, the CMake package (fern::fern) and fern.pc.
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/fern DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS fern EXPORT fernTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT fernTargets NAMESPACE fern:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fern)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fernConfig.cmake.in
  ${PROJECT_BINARY_DIR}/fernConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fern)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/fernConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/fernConfig.cmake ${PROJECT_BINARY_DIR}/fernConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fern)

configure_file(${PROJECT_SOURCE_DIR}/cmake/fern.pc.in ${PROJECT_BINARY_DIR}/fern.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fern.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
