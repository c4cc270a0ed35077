# RW_STATIC with RW_STATIC_SOURCES: simdjson and cpp-httplib compiled from their
# Debian source packages (scripts/fetch-static-sources.sh fetches the versions
# installed on the machine), because Debian ships neither as a static archive.
# Defines rw_simdjson_static and sets RW_HTTPLIB_LIBS.
set(_rw_simdjson ${RW_STATIC_SOURCES}/simdjson/singleheader)
set(_rw_httplib ${RW_STATIC_SOURCES}/cpp-httplib)
if(NOT EXISTS ${_rw_simdjson}/simdjson.cpp OR NOT EXISTS ${_rw_httplib}/httplib.h)
    message(FATAL_ERROR "RW_STATIC_SOURCES=${RW_STATIC_SOURCES} lacks simdjson/singleheader/simdjson.cpp "
                        "or cpp-httplib/httplib.h: run scripts/fetch-static-sources.sh ${RW_STATIC_SOURCES}")
endif()

find_package(Threads REQUIRED)
add_library(rw_simdjson_static STATIC ${_rw_simdjson}/simdjson.cpp)
# BEFORE: the source's simdjson.h, not /usr/include's (same version, but one tree).
target_include_directories(rw_simdjson_static SYSTEM BEFORE PUBLIC ${_rw_simdjson})
set_target_properties(rw_simdjson_static PROPERTIES POSITION_INDEPENDENT_CODE OFF)

# Upstream httplib.h is header-only; Debian's /usr/include/httplib.h is the split
# declaration half of its shared library, so the source's header must come first.
add_library(rw_httplib_header_only INTERFACE)
target_include_directories(rw_httplib_header_only SYSTEM BEFORE INTERFACE ${_rw_httplib})
target_link_libraries(rw_httplib_header_only INTERFACE Threads::Threads)
set(RW_HTTPLIB_LIBS rw_httplib_header_only)
