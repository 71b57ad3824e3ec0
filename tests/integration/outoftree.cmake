# outoftree: installs this build to a temporary prefix, builds examples/hello
# against it as a plugin author would, and runs it in a private gmd.
add_test(NAME outoftree
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/outoftree.sh
                 ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
set_tests_properties(outoftree PROPERTIES TIMEOUT 300 LABELS packaging
                     COST 40)
