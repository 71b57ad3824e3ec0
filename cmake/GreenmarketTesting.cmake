# Test helpers for this tree's Check tests (core, client and every market).
# gm_test_support (tests/CMakeLists.txt) is resolved when the whole project
# has been read, so a plugin folder read before tests/ may link it.
# gm_add_check_test(<name> SOURCES <files> [LIBS <libs>] [TIMEOUT <s>]
#                   [COST <s>] [CLUSTER1] [CLUSTER1_CASE <tcase>] [CLUSTER3])
# One Check test program; CK_FORK keeps each test case in its own process.
# CLUSTER1 registers it a second time, as <name>_cluster1 with the label
# cluster1, against a one-node Redis Cluster owning every slot
# (GM_TEST_REDIS_CLUSTER=1, tests/support/redis_fixture.h): a command or
# script spanning two slots fails there as it would on a real cluster.
# CLUSTER3 registers it a second time as <name>_cluster3 with the label
# cluster3, against three masters sharing the slots (GM_TEST_REDIS_CLUSTER=3):
# gmd routes every command by slot (`[redis] cluster`, core/cluster.c), so
# the copy also catches a key reached on the wrong master (MOVED).
# Each Redis start in cluster mode costs about 2 s (a master waits before it
# turns writable). The copies set GM_TEST_REDIS_SHARE=1: the program starts
# one cluster and its cases take it over in turn, flushed, unless a case
# killed, restarted or reconfigured it (tests/support/redis_fixture.c,
# shared_take); such cases still pay the 2 s. A program that restarts Redis
# in many cases runs only CLUSTER1_CASE (Check's CK_RUN_CASE) there, or no
# cluster copy: the suite stays under its time on 2 cores.
# COST is about how long the program runs, in seconds (every copy): ctest -j
# starts the costliest first, so a long program started last does not run
# on alone at the end. ctest learns the real costs after a run
# (Testing/Temporary/CTestCostData.txt), but CI builds a clean clone each time.
function(gm_add_check_test name)
  cmake_parse_arguments(T "CLUSTER1;CLUSTER3" "TIMEOUT;COST;CLUSTER1_CASE"
                        "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE gm_test_support ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "CK_DEFAULT_TIMEOUT=60")
  if(T_CLUSTER1 OR T_CLUSTER3)
    # The whole program runs in both modes: deploy/test's Release run
    # takes the cluster copy (a cluster behaves as one Redis for
    # single-slot commands, and refuses the rest), its ASan run the plain
    # one, so each build runs it once.
    set_property(TEST ${name} APPEND PROPERTY LABELS plain_twin)
  endif()
  if(T_CLUSTER1 OR T_CLUSTER1_CASE)
    set(env "CK_DEFAULT_TIMEOUT=60;GM_TEST_REDIS_CLUSTER=1;GM_TEST_REDIS_SHARE=1")
    if(T_CLUSTER1_CASE)
      list(APPEND env "CK_RUN_CASE=${T_CLUSTER1_CASE}")
    endif()
    add_test(NAME ${name}_cluster1 COMMAND ${name})
    set_tests_properties(${name}_cluster1 PROPERTIES TIMEOUT ${T_TIMEOUT}
      LABELS cluster1 ENVIRONMENT "${env}")
  endif()
  if(T_CLUSTER3)
    add_test(NAME ${name}_cluster3 COMMAND ${name})
    set_tests_properties(${name}_cluster3 PROPERTIES TIMEOUT ${T_TIMEOUT}
      LABELS cluster3
      ENVIRONMENT "CK_DEFAULT_TIMEOUT=60;GM_TEST_REDIS_CLUSTER=3;GM_TEST_REDIS_SHARE=1")
  endif()
  if(T_COST)
    foreach(t ${name} ${name}_cluster1 ${name}_cluster3)
      if(TEST ${t})
        set_tests_properties(${t} PROPERTIES COST ${T_COST})
      endif()
    endforeach()
  endif()
endfunction()
