# Test helpers for this tree's Check tests (core, client and every market).
# gm_test_support (tests/CMakeLists.txt) is resolved when the whole project
# has been read, so a plugin folder read before tests/ may link it.
# gm_add_check_test(<name> SOURCES <files> [LIBS <libs>] [TIMEOUT <s>])
# One Check test program; CK_FORK keeps each test case in its own process.
function(gm_add_check_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE gm_test_support ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=60")
endfunction()
