# gm_protobuf_c(<out-var> <file.proto>...): runs protoc-c at build time and
# puts the generated .pb-c.c files in <out-var>; the .pb-c.h files land in the
# current binary dir, which the caller adds to its include path.
function(gm_protobuf_c out)
  find_program(GM_PROTOC_C protoc-c REQUIRED)
  set(srcs)
  foreach(proto ${ARGN})
    get_filename_component(abs ${proto} ABSOLUTE)
    get_filename_component(dir ${abs} DIRECTORY)
    get_filename_component(stem ${abs} NAME_WE)
    set(c ${CMAKE_CURRENT_BINARY_DIR}/${stem}.pb-c.c)
    set(h ${CMAKE_CURRENT_BINARY_DIR}/${stem}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${GM_PROTOC_C} --c_out=${CMAKE_CURRENT_BINARY_DIR} -I${dir} ${abs}
      DEPENDS ${abs}
      COMMENT "protoc-c ${stem}.proto")
    list(APPEND srcs ${c})
  endforeach()
  set(${out} ${srcs} PARENT_SCOPE)
endfunction()

# gm_add_plugin(<market> SOURCES <c files> [PROTOS <proto files>] [LUA <files>])
# Builds the market plugin gm_<market>.so: the one line a market needs.
# It links with --no-undefined (set GM_PLUGIN_ALLOW_UNDEFINED to ON to turn
# that off, e.g. under a sanitizer whose runtime is in the executable).
# Lua scripts listed under LUA are embedded as C strings named
# gm_lua_<basename> (declared with `extern const char gm_lua_<basename>[];`).
function(gm_add_plugin market)
  cmake_parse_arguments(P "" "" "SOURCES;PROTOS;LUA" ${ARGN})
  set(target gm_${market})
  set(gen)
  if(P_PROTOS)
    gm_protobuf_c(gen ${P_PROTOS})
  endif()
  set(lua_srcs)
  foreach(lua ${P_LUA})
    get_filename_component(abs ${lua} ABSOLUTE)
    get_filename_component(stem ${abs} NAME_WE)
    set(out ${CMAKE_CURRENT_BINARY_DIR}/lua_${stem}.c)
    add_custom_command(
      OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -DIN=${abs} -DOUT=${out} -DNAME=gm_lua_${stem}
              -P ${GM_PLUGIN_CMAKE_DIR}/GreenmarketEmbed.cmake
      DEPENDS ${abs} ${GM_PLUGIN_CMAKE_DIR}/GreenmarketEmbed.cmake
      COMMENT "embedding ${stem}.lua")
    list(APPEND lua_srcs ${out})
  endforeach()
  add_library(${target} MODULE ${P_SOURCES} ${gen} ${lua_srcs})
  # Every plugin of this build, for targets that need them all (the fuzz
  # smoke run builds the plugins and its targets, nothing else).
  set_property(GLOBAL APPEND PROPERTY GM_PLUGIN_TARGETS ${target})
  set_target_properties(${target} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
  target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_BINARY_DIR}
                                               ${CMAKE_CURRENT_SOURCE_DIR})
  if(TARGET greenmarket_sdk)
    target_link_libraries(${target} PRIVATE greenmarket_sdk)
  else()
    target_link_libraries(${target} PRIVATE greenmarket::sdk)
  endif()
  # A plugin links no host symbol, so every name it uses must resolve when
  # it is linked: a missing one fails the build here, naming the symbol and
  # the object that uses it, instead of gmd refusing the plugin at load
  # ("dlopen failed: ... undefined symbol"). Sanitizer builds whose runtime
  # lives in the executable (clang's) set GM_PLUGIN_ALLOW_UNDEFINED.
  if(NOT GM_PLUGIN_ALLOW_UNDEFINED)
    target_link_options(${target} PRIVATE LINKER:--no-undefined)
  endif()
  if(DEFINED GM_BUILD_PLUGIN_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY
                                               ${GM_BUILD_PLUGIN_DIR})
  endif()
  if(DEFINED GM_PLUGIN_INSTALL_DIR)
    install(TARGETS ${target} LIBRARY DESTINATION ${GM_PLUGIN_INSTALL_DIR})
    # The market's messages, for the programs that call it (docs/client.md):
    # installed with the plugin, so they match the methods gmd serves.
    if(P_PROTOS)
      if(NOT DEFINED GM_PROTO_INSTALL_DIR)
        set(GM_PROTO_INSTALL_DIR share/greenmarket/proto)
      endif()
      install(FILES ${P_PROTOS} DESTINATION ${GM_PROTO_INSTALL_DIR})
    endif()
  endif()
endfunction()

set(GM_PLUGIN_CMAKE_DIR ${CMAKE_CURRENT_LIST_DIR})
