/* empo_main.c — the `empo` command: LuaJIT with the empo library on its path.
 *
 *     empo run FILE.lua [args]   run a script (also: empo FILE.lua [args])
 *     empo -e CODE [args]        run a chunk of Lua
 *     empo - [args]              run a script read from stdin
 *     empo repl / empo           interactive prompt (lua/cli/repl.lua)
 *     empo generate DIR PROMPT   sample from a model (lua/cli/generate.lua)
 *     empo eval DIR DATA.jsonl   accuracy on questions with gold answers (lua/cli/eval.lua)
 *     empo plot RUN_DIR...       the runs' curves as one HTML page (lua/cli/plot.lua)
 *     empo info                  kernel table, threads, CPU (lua/cli/info.lua)
 *     empo rescore RUN_DIR k=v   stored rollouts re-scored (lua/cli/rescore.lua)
 *     empo attach RUN_DIR        a REPL inside a running job (lua/cli/attach.lua)
 *     empo --version / --help
 *
 * A script sees `arg` as luajit builds it: arg[0] the script, arg[1..] the
 * arguments after it, arg[-1] the empo executable (`run` is dropped, so
 * `empo run script.lua` and `empo script.lua` give the same table); its varargs `...`
 * are arg[1..]. With -e, arg[0] is "-e". Errors print `file:line: message`
 * and a traceback to stderr and exit with status 1. With EMPO_LEAK_CHECK=1
 * the exit status is also 1 when tensors outlive the Lua state.
 *
 * This file only sets up the Lua state; everything else is Lua. It is not
 * part of libempo, which knows nothing of Lua. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "empo/runtime.h"
#include "empo/dist.h"

#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>

#ifndef EMPO_VERSION_STRING
#define EMPO_VERSION_STRING "0.0.0"
#endif
/* The Lua path of the build tree (sources + generated cdef); CMake defines
 * it in a force-included header because it contains ';'. */
#ifndef EMPO_BUILD_LUA_PATH
#define EMPO_BUILD_LUA_PATH ""
#endif
#ifndef EMPO_INSTALL_LUA_DIR
#define EMPO_INSTALL_LUA_DIR ""
#endif

static const char *progname = "empo";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: empo run FILE.lua [args]   run a Lua script (also: empo FILE.lua [args])\n"
            "       empo -e CODE [args]        run a chunk of Lua code\n"
            "       empo - [args]              run a script read from stdin\n"
            "       empo repl                  interactive prompt (also: empo with no arguments)\n"
            "       empo generate MODEL_DIR PROMPT... [n=4 temperature=1 max_new_tokens=128 ...]\n"
            "                                  sample completions (empo generate --help)\n"
            "       empo eval MODEL_DIR DATA.jsonl [k=8 chat=true adapter=DIR ...]\n"
            "                                  greedy, avg@k, maj@k, pass@k against gold answers\n"
            "       empo merge BASE_DIR ADAPTER_DIR OUT_DIR\n"
            "                                  a LoRA adapter (PEFT's layout) merged into its base: a plain\n"
            "                                  Hugging Face checkpoint\n"
            "       empo plot RUN_DIR... [out=FILE.html]\n"
            "                                  the runs' curves, overlaid, as one HTML page\n"
            "       empo rescore RUN_DIR [reward=... cluster=... filter=... advantage=...]\n"
            "                                  the run's stored rollouts re-scored under other pieces,\n"
            "                                  without sampling (empo rescore --help)\n"
            "       empo attach RUN_DIR        a REPL in a running `empo run` of RUN_DIR: its chunks run\n"
            "                                  between steps, with the trainer as t (empo attach --help)\n"
            "       empo info                  the kernel table (and the CPU's best), threads, CPU\n"
            "       empo --version             print the version\n"
            "       empo --help                print this help\n"
            "\n"
            "Scripts get their arguments in `arg` (arg[0] = script) and in `...`;\n"
            "`require 'empo'` loads the library. Modules beside the script are found\n"
            "by require. Environment: EMPO_LUA_PATH (Lua search path for the library),\n"
            "EMPO_LIB (libempo to load from a plain luajit), EMPO_ISA=avx2|avx512|ref\n"
            "(the kernel table; default the best the CPU runs; ref: the naive reference\n"
            "kernels everywhere).\n");
}

/* ---- SIGINT: the REPL interrupts running Lua code, scripts just die ----
 * The REPL (through the FFI; these symbols are exported from the binary)
 * picks a mode: 0 = default action (kill), 1 = only note it (at the prompt),
 * 2 = note it and stop the running Lua code with an "interrupted!" error. */
int empo_cli_sigint_mode(int mode);
int empo_cli_take_interrupt(void);

static lua_State *g_L;
static volatile sig_atomic_t g_interrupted;
static volatile sig_atomic_t g_sigmode;

static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    g_interrupted = 0;
    luaL_error(L, "interrupted!");
}

static void on_sigint(int sig)
{
    if (g_sigmode == 2) {
        if (g_interrupted) { /* a second Ctrl-C while stuck in C or JIT code */
            static const char msg[] = "\nempo: interrupted again before Lua code could stop; exiting\n";
            ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
            (void)w;
            signal(sig, SIG_DFL);
            raise(sig);
            return;
        }
        g_interrupted = 1;
        if (g_L)
            lua_sethook(g_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    } else {
        g_interrupted = 1;
    }
}

int empo_cli_sigint_mode(int mode)
{
    int prev = g_sigmode;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    if (mode == 0) {
        sa.sa_handler = SIG_DFL;
    } else {
        sa.sa_handler = on_sigint;
        /* no SA_RESTART: a read at the prompt returns so the REPL can redraw */
    }
    if (mode != 2 && g_L)
        lua_sethook(g_L, NULL, 0, 0);
    g_sigmode = mode;
    sigaction(SIGINT, &sa, NULL);
    return prev;
}

int empo_cli_take_interrupt(void)
{
    int was = g_interrupted;
    g_interrupted = 0;
    return was;
}

/* ---- error reporting ---- */

/* Message handler for lua_pcall: turn the error into text + traceback. */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int report(lua_State *L, int status)
{
    if (status != 0) {
        const char *msg = lua_tostring(L, -1);
        fflush(stdout);
        fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error object is not a string)");
        fflush(stderr);
        lua_pop(L, 1);
    }
    return status;
}

/* Call the function below its nargs arguments with a traceback handler. */
static int docall(lua_State *L, int nargs, int nres)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    return status;
}

/* ---- package.path ---- */

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Directory part of path ("." when there is none), into buf. */
static void dirname_of(const char *path, char *buf, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(buf, n, ".");
    } else if (slash == path) {
        snprintf(buf, n, "/");
    } else {
        size_t len = (size_t)(slash - path);
        if (len >= n)
            len = n - 1;
        memcpy(buf, path, len);
        buf[len] = '\0';
    }
}

/* The library's Lua path: EMPO_LUA_PATH, else an install tree beside the
 * executable (<bin>/../share/lua/5.1), else the build tree, else the
 * configured install directory. Pushes the string. */
static void push_empo_path(lua_State *L)
{
    const char *env = getenv("EMPO_LUA_PATH");
    if (env && *env) {
        lua_pushstring(L, env);
        return;
    }
    char exe[PATH_MAX], dir[PATH_MAX], probe[PATH_MAX + 64];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        dirname_of(exe, dir, sizeof dir);
        snprintf(probe, sizeof probe, "%s/../share/lua/5.1/empo/init.lua", dir);
        if (file_exists(probe)) {
            lua_pushfstring(L, "%s/../share/lua/5.1/?.lua;%s/../share/lua/5.1/?/init.lua", dir, dir);
            return;
        }
    }
    /* The build tree when it is still there (the binary in build/). */
    const char *build = EMPO_BUILD_LUA_PATH;
    const char *q = strchr(build, '?');
    if (q != NULL) {
        snprintf(probe, sizeof probe, "%.*sempo/init.lua", (int)(q - build), build);
        if (file_exists(probe) || EMPO_INSTALL_LUA_DIR[0] == '\0') {
            lua_pushstring(L, build);
            return;
        }
    }
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", EMPO_INSTALL_LUA_DIR, EMPO_INSTALL_LUA_DIR);
}

/* package.path = [<scriptdir>/?.lua;<scriptdir>/?/init.lua;] <empo path>;<default> */
static void set_package_path(lua_State *L, const char *script)
{
    lua_getglobal(L, "package");
    int top = lua_gettop(L);
    if (script != NULL) {
        char dir[PATH_MAX];
        dirname_of(script, dir, sizeof dir);
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
    }
    push_empo_path(L);
    lua_pushliteral(L, ";");
    lua_getfield(L, top, "path");
    lua_concat(L, lua_gettop(L) - top);
    lua_setfield(L, top, "path");
    lua_pop(L, 1);
}

/* ---- arg ---- */

/* arg[-1] = argv[0], arg[0] = name0, arg[i] = argv[first + i - 1]. */
static void set_arg_table(lua_State *L, char **argv, int argc, const char *name0, int first)
{
    lua_createtable(L, argc > first ? argc - first : 0, 2);
    lua_pushstring(L, argv[0]);
    lua_rawseti(L, -2, -1);
    if (name0 != NULL) {
        lua_pushstring(L, name0);
        lua_rawseti(L, -2, 0);
    }
    for (int i = first; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - first + 1);
    }
    lua_setglobal(L, "arg");
}

static int push_args(lua_State *L, char **argv, int argc, int first)
{
    int n = 0;
    luaL_checkstack(L, argc - first + 2, "too many arguments");
    for (int i = first; i < argc; i++, n++)
        lua_pushstring(L, argv[i]);
    return n;
}

/* `empo` as a lazily loaded global for -e chunks: the library is only
 * required when the chunk first names it. */
static const char lazy_empo[] =
    "setmetatable(_G, { __index = function(t, k)\n"
    "  if k == 'empo' then\n"
    "    setmetatable(t, nil)\n"
    "    local m = require 'empo'\n"
    "    rawset(t, 'empo', m)\n"
    "    return m\n"
    "  end\n"
    "end })\n";

/* ---- modes ---- */

static int run_script(lua_State *L, char **argv, int argc, int script_at)
{
    const char *path = argv[script_at];
    int from_stdin = strcmp(path, "-") == 0;
    if (!from_stdin) {
        struct stat st;
        if (stat(path, &st) != 0) {
            fprintf(stderr, "%s: cannot open %s: %s\n", progname, path, strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            fprintf(stderr, "%s: cannot run %s: it is a directory\n", progname, path);
            return 1;
        }
    }
    set_package_path(L, from_stdin ? NULL : path);
    set_arg_table(L, argv, argc, path, script_at + 1);
    int status = luaL_loadfile(L, from_stdin ? NULL : path);
    if (status != 0)
        return report(L, status) ? 1 : 0;
    int n = push_args(L, argv, argc, script_at + 1);
    status = docall(L, n, 1);
    if (status != 0)
        return report(L, status) ? 1 : 0;
    /* cli.recipe trains what the script returned when it is an
     * empo.recipe{...} (recipes/math.lua), and ignores anything else but
     * a recipe the script built and did not return */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cli.recipe");
    status = docall(L, 1, 1);
    if (status != 0)
        return report(L, status) ? 1 : 0;
    lua_insert(L, -2);
    status = docall(L, 1, 1);
    if (status != 0)
        return report(L, status) ? 1 : 0;
    int rc = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    return rc;
}

static int run_code(lua_State *L, char **argv, int argc)
{
    if (argc < 3) {
        fprintf(stderr, "%s: -e needs an argument (Lua code)\n", progname);
        return 2;
    }
    set_package_path(L, NULL);
    set_arg_table(L, argv, argc, "-e", 3);
    if (luaL_dostring(L, lazy_empo) != 0)
        return report(L, 1) ? 1 : 0;
    int status = luaL_loadbuffer(L, argv[2], strlen(argv[2]), "=(command line)");
    if (status != 0)
        return report(L, status) ? 1 : 0;
    int n = push_args(L, argv, argc, 3);
    return report(L, docall(L, n, 0)) ? 1 : 0;
}

static int run_repl(lua_State *L, char **argv, int argc, int first)
{
    set_package_path(L, NULL);
    set_arg_table(L, argv, argc, NULL, first);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cli.repl");
    int status = docall(L, 1, 1);
    if (status != 0) {
        fprintf(stderr, "%s: cannot load the REPL (module cli.repl)\n", progname);
        return report(L, status) ? 1 : 0;
    }
    lua_getfield(L, -1, "run");
    lua_remove(L, -2);
    status = docall(L, 0, 1);
    if (status != 0)
        return report(L, status) ? 1 : 0;
    int rc = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    return rc;
}

/* A subcommand written in Lua: require(module) returns a function, called
 * with the arguments after the subcommand; its number result is the exit
 * status. */
static int run_module(lua_State *L, char **argv, int argc, const char *module)
{
    set_package_path(L, NULL);
    set_arg_table(L, argv, argc, argv[1], 2);
    lua_getglobal(L, "require");
    lua_pushstring(L, module);
    int status = docall(L, 1, 1);
    if (status != 0)
        return report(L, status) ? 1 : 0;
    int n = push_args(L, argv, argc, 2);
    status = docall(L, n, 1);
    if (status != 0)
        return report(L, status) ? 1 : 0;
    int rc = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 1 || argv[0] == NULL)
        return 2;
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (cmd && (!strcmp(cmd, "--version") || !strcmp(cmd, "-v") || !strcmp(cmd, "version"))) {
        printf("empo %s (%s)\n", EMPO_VERSION_STRING, LUAJIT_VERSION);
        return 0;
    }
    if (cmd && (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))) {
        usage(stdout);
        return 0;
    }
    if (cmd && !strcmp(cmd, "run") && argc >= 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (cmd && !strcmp(cmd, "run") && argc < 3) {
        fprintf(stderr, "%s: run needs a script: empo run FILE.lua [args]\n", progname);
        return 2;
    }
    if (cmd && cmd[0] == '-' && cmd[1] != '\0' && strcmp(cmd, "-e") != 0) {
        fprintf(stderr, "%s: unknown option '%s'\n", progname, cmd);
        usage(stderr);
        return 2;
    }

    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "%s: cannot create the Lua state (out of memory)\n", progname);
        return 1;
    }
    g_L = L;
    lua_gc(L, LUA_GCSTOP, 0);
    luaL_openlibs(L);
    lua_gc(L, LUA_GCRESTART, -1);

    int rc;
    if (cmd == NULL || !strcmp(cmd, "repl"))
        rc = run_repl(L, argv, argc, cmd ? 2 : 1);
    else if (!strcmp(cmd, "-e"))
        rc = run_code(L, argv, argc);
    else if (!strcmp(cmd, "run"))
        rc = run_script(L, argv, argc, 2);
    else if (!strcmp(cmd, "generate"))
        rc = run_module(L, argv, argc, "cli.generate");
    else if (!strcmp(cmd, "eval"))
        rc = run_module(L, argv, argc, "cli.eval");
    else if (!strcmp(cmd, "merge"))
        rc = run_module(L, argv, argc, "cli.merge");
    else if (!strcmp(cmd, "plot"))
        rc = run_module(L, argv, argc, "cli.plot");
    else if (!strcmp(cmd, "info"))
        rc = run_module(L, argv, argc, "cli.info");
    else if (!strcmp(cmd, "rescore"))
        rc = run_module(L, argv, argc, "cli.rescore");
    else if (!strcmp(cmd, "attach"))
        rc = run_module(L, argv, argc, "cli.attach");
    else
        rc = run_script(L, argv, argc, 1);

    fflush(stdout);
    empo_cli_sigint_mode(0);
    g_L = NULL;
    lua_close(L);  /* runs finalizers: tensors are released */
    /* EMPO_LEAK_CHECK=1: every tensor must be gone once the state is closed. */
    const char *leak = getenv("EMPO_LEAK_CHECK");
    if (leak && *leak && strcmp(leak, "0") != 0) {
        int64_t alive = empo_live_tensors();
        if (alive != 0) {
            fprintf(stderr, "%s: %lld tensor(s) still alive at exit\n", progname, (long long)alive);
            if (rc == 0)
                rc = 1;
        }
    }
    /* under mpirun: leave the job cleanly, or stop every rank on a failure */
    empo_dist_end(rc);
    return rc;
}
