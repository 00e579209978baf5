# gen_cdef.cmake — turns core/include/empo/empo.h into lua/empo/cdef.lua: preprocess with
# EMPO_FFI defined (no system headers), keep the declarations, wrap them in
# a Lua string.
execute_process(COMMAND ${CC} -E -P -DEMPO_FFI -I${INCLUDE} ${HEADER}
                OUTPUT_VARIABLE decls RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gen_cdef: preprocessing ${HEADER} failed")
endif()
string(REGEX REPLACE "__attribute__\\(\\([^)]*\\)\\)" "" decls "${decls}")
file(WRITE ${OUT} "-- Generated from core/include/empo/empo.h by lua/gen_cdef.cmake. Do not edit.\nreturn [==[\n${decls}]==]\n")
