# Copies the host's script wrapper (gm__prelude and gm__epilogue in
# core/redis.c) into a C file, so the ceiling wraps the carbon scripts with
# exactly the text gmd uses: -DIN=core/redis.c -DOUT=file.c
file(READ ${IN} src)
set(out "/* generated from ${IN} by HostWrapper.cmake */\n")
foreach(name gm__prelude gm__epilogue)
  string(FIND "${src}" "static const char ${name}[] =" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${IN} no longer defines ${name}; update "
                        "plugins/carbon/bench/HostWrapper.cmake to find the wrapper")
  endif()
  string(SUBSTRING "${src}" ${at} -1 rest)
  string(FIND "${rest}" "\";\n" end)
  math(EXPR len "${end} + 2")
  string(SUBSTRING "${rest}" 0 ${len} decl)
  string(REPLACE "static const char ${name}[]" "const char bench_host_${name}[]"
                 decl "${decl}")
  string(APPEND out "${decl}\n")
endforeach()
file(WRITE ${OUT} "${out}")
