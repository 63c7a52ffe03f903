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

# fern.pc finds the prefix relative to itself (${pcfiledir}), so an install moved or made
# with --prefix still works: climb from LIBDIR/pkgconfig back to the prefix.
set(FERN_PC_PREFIX_FROM_PCFILEDIR "..")
string(REPLACE "/" ";" fern_libdir_parts "${CMAKE_INSTALL_LIBDIR}")
foreach(part IN LISTS fern_libdir_parts)
  string(APPEND FERN_PC_PREFIX_FROM_PCFILEDIR "/..")
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/fern.pc.in ${PROJECT_BINARY_DIR}/fern.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/fern.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
