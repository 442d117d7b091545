# Build helpers: one library target per folder, binaries are a thin main.cc, tests are
# GoogleTest binaries registered with CTest under a tier label (see tests/README.md).

# Designated initializers that leave members defaulted are intended, not a mistake.
set(ZMESH_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)

# zmesh_cc_library(NAME SRCS a.cc b.cc DEPS lib1 lib2)
function(zmesh_cc_library name)
  cmake_parse_arguments(A "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}
                                            ${PROJECT_SOURCE_DIR}/bpf/include)
  target_compile_options(${name} PRIVATE ${ZMESH_WARNINGS})
  target_link_libraries(${name} PUBLIC ${A_DEPS})
endfunction()

# zmesh_cc_binary(NAME SRCS main.cc DEPS ...)
function(zmesh_cc_binary name)
  cmake_parse_arguments(A "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${A_SRCS})
  target_compile_options(${name} PRIVATE ${ZMESH_WARNINGS})
  target_link_libraries(${name} PRIVATE ${A_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bin)
endfunction()

# zmesh_cc_test(NAME SRCS x_test.cc DEPS ... LABELS unit|integration|lab|fuzz)
function(zmesh_cc_test name)
  cmake_parse_arguments(A "" "" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${A_SRCS})
  target_compile_options(${name} PRIVATE ${ZMESH_WARNINGS})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gmock GTest::gtest_main)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT A_LABELS)
    set(A_LABELS unit)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${A_LABELS}"
                       ENVIRONMENT "ZMESH_BUILD_DIR=${PROJECT_BINARY_DIR};ZMESH_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
