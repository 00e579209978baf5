/* fuzz_settings.c — recipe overrides and JSONL data lines, fuzzed through
 * the Lua code that checks them (tests/rl/fuzz_settings.lua, run in a
 * LuaJIT state of its own). The first input byte picks the target: even,
 * the rest are `key=value` overrides (one a line) resolved against a
 * recipe; odd, the rest is one data line. The Lua side raises only when an
 * invariant breaks (a value past its check, a message that is a Lua
 * runtime error or names a library file); that aborts, so libFuzzer and
 * the replay driver (support/fuzz_main.c) report it. The Lua sources are
 * found through EMPO_FUZZ_LUA_PATH (set at build time). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int check_ref = LUA_NOREF;

/* Lua code carries no compiler coverage, so under libFuzzer the Lua side
 * reports the lines it runs (a line hook) into libFuzzer's extra counters:
 * the fuzzer then sees which checks an input reached. */
#ifdef EMPO_LIBFUZZER
static uint8_t lua_lines[1 << 14] __attribute__((used, section("__libfuzzer_extra_counters")));
static int hit(lua_State *S) {
    uint32_t k = (uint32_t)lua_tointeger(S, 1) & ((1u << 14) - 1);
    if (lua_lines[k] < 255) lua_lines[k]++;
    return 0;
}
#endif

static void start(void) {
    L = luaL_newstate();
    if (!L) { fprintf(stderr, "fuzz_settings: no Lua state\n"); abort(); }
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, EMPO_FUZZ_LUA_PATH);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
#ifdef EMPO_LIBFUZZER
    lua_pushcfunction(L, hit);
    lua_setglobal(L, "fuzz_coverage_hit");
#endif
    if (luaL_dofile(L, EMPO_FUZZ_LUA_SCRIPT) != 0 || !lua_isfunction(L, -1)) {
        fprintf(stderr, "fuzz_settings: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "no check function");
        abort();
    }
    check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!L) start();
    if (size > 1 << 16) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != 0) {
        fprintf(stderr, "fuzz_settings: invariant broken: %s\n", lua_tostring(L, -1));
        abort();
    }
    return 0;
}
