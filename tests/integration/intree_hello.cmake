# examples/hello built in this tree as docs/plugins.md says a market folder
# in plugins/ is built: its own CMakeLists.txt, unchanged, its
# find_package(greenmarket) answered by the tree.  It goes to a folder of
# its own and is not installed, so it ships nowhere.  test_hello_intree is
# the Check test of docs/plugins.md ("Test it") run against it.
function(gm_intree_hello)
  set(GM_BUILD_PLUGIN_DIR ${CMAKE_CURRENT_BINARY_DIR}/hello-plugins)
  unset(GM_PLUGIN_INSTALL_DIR)
  add_subdirectory(${PROJECT_SOURCE_DIR}/examples/hello
                   ${CMAKE_CURRENT_BINARY_DIR}/hello-intree)
  gm_add_check_test(test_hello_intree SOURCES test_hello_intree.c
                    LIBS PkgConfig::SQLITE TIMEOUT 120)
  target_compile_definitions(test_hello_intree PRIVATE
    HELLO_PLUGIN_DIR="${GM_BUILD_PLUGIN_DIR}")
  add_dependencies(test_hello_intree gm gmd gm_hello)
endfunction()
gm_intree_hello()
