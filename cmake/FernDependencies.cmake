# Finds Fern's third-party libraries (all Debian packages) and collects the link targets in
# FERN_DEPENDENCY_TARGETS. fernConfig.cmake repeats the same look-ups for users of the
# installed package, so keep the two in step (cmake/fernConfig.cmake.in).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(absl CONFIG REQUIRED)
pkg_check_modules(FERN_ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(FERN_ZLIB REQUIRED IMPORTED_TARGET zlib)
pkg_check_modules(FERN_LZMA REQUIRED IMPORTED_TARGET liblzma)
pkg_check_modules(FERN_SNAPPY REQUIRED IMPORTED_TARGET snappy)
pkg_check_modules(FERN_XXHASH REQUIRED IMPORTED_TARGET libxxhash)

set(FERN_ABSL_COMPONENTS
  absl::base absl::synchronization absl::strings absl::str_format absl::time
  absl::flat_hash_map absl::flat_hash_set absl::hash absl::inlined_vector absl::status
  absl::statusor)
set(FERN_DEPENDENCY_TARGETS
  ${FERN_ABSL_COMPONENTS}
  PkgConfig::FERN_ZSTD PkgConfig::FERN_ZLIB PkgConfig::FERN_LZMA PkgConfig::FERN_SNAPPY
  PkgConfig::FERN_XXHASH)
