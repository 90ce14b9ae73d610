/* Builds tests/c/test_kernels.c and the kernel sources as WASI modules with clang-19, once with
 * -msimd128 and once with -mrelaxed-simd, and runs each under Node.js through
 * tools/wasi-run.mjs, so the WebAssembly SIMD128 and relaxed-SIMD kernels are checked against
 * the scalar reference like the native ones.
 *
 * Two tool quirks shape the commands:
 *   - clang runs binaryen's wasm-opt at link time when it is on PATH and an optimization level
 *     is given. Binaryen 108 rewrites relaxed-SIMD opcodes into invalid code, so objects are
 *     compiled with -O2 and linked without one.
 *   - Node.js 20 (V8 11.3) needs --experimental-wasm-relaxed-simd, and its baseline compiler
 *     Liftoff miscomputes i32x4.relaxed_dot_i8x16_i7x16_add_s, so modules run with --no-liftoff.
 * The test passes with a "skipped" line when clang-19, wasi-libc or node is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

static const char *const kernel_sources[] = {
    "tests/c/test_kernels.c", "src/kernels/qdot.c",          "src/kernels/qdot_scalar.c",
    "src/kernels/qdot_x86.c", "src/kernels/qdot_wasm.c",     "src/kernels/qdot_wasm_relaxed.c",
    "src/kernels/qdot_neon.c", "src/kernels/matmul_i8.c",    "src/forward/matmul.c",
    "src/core/threadpool.c",  "src/core/status.c",
};
#define N_SOURCES (sizeof(kernel_sources) / sizeof(kernel_sources[0]))

static int run_command(const char *command) {
    int status = system(command);
    if (status != 0) {
        fprintf(stderr, "command failed (status %d): %s\n", status, command);
    }
    return status;
}

static int tools_available(void) {
    return system("command -v clang-19 >/dev/null 2>&1") == 0 && system("command -v node >/dev/null 2>&1") == 0 &&
           access("/usr/include/wasm32-wasi/stdio.h", R_OK) == 0 && access("/usr/lib/wasm32-wasi/libc.a", R_OK) == 0;
}

/* Compiles every source with flags into directory, links test.wasm and runs it. */
static int build_and_run(const char *directory, const char *flags) {
    char command[8192];
    const char *common = "--target=wasm32-wasi -O2 -std=c11 -Wall -Wextra -Werror -ffp-contract=off "
                         "-DSQ_NO_THREADS -D_POSIX_C_SOURCE=200809L -Isrc -Itests/c";
    snprintf(command, sizeof(command),
             "mkdir -p %s/sysroot/include %s/sysroot/lib && ln -sfn /usr/include/wasm32-wasi %s/sysroot/include/wasm32-wasi"
             " && ln -sfn /usr/lib/wasm32-wasi %s/sysroot/lib/wasm32-wasi",
             directory, directory, directory, directory);
    if (run_command(command) != 0) {
        return 1;
    }

    char objects[4096] = "";
    for (size_t i = 0; i < N_SOURCES; i++) {
        char object[512];
        snprintf(object, sizeof(object), "%s/object%zu.o", directory, i);
        snprintf(command, sizeof(command), "clang-19 %s %s --sysroot=%s/sysroot -c %s -o %s", common, flags, directory,
                 kernel_sources[i], object);
        if (run_command(command) != 0) {
            return 1;
        }
        strncat(objects, " ", sizeof(objects) - strlen(objects) - 1);
        strncat(objects, object, sizeof(objects) - strlen(objects) - 1);
    }
    snprintf(command, sizeof(command), "clang-19 --target=wasm32-wasi --sysroot=%s/sysroot -fuse-ld=lld%s -o %s/test.wasm",
             directory, objects, directory);
    if (run_command(command) != 0) {
        return 1;
    }
    snprintf(command, sizeof(command),
             "node --experimental-wasm-relaxed-simd --no-liftoff tools/wasi-run.mjs %s/test.wasm", directory);
    return run_command(command);
}

static void test_wasm_kernels(void) {
    if (!tools_available()) {
        fprintf(stderr, "skipped: clang-19, node or wasi-libc is not installed\n");
        return;
    }
    char directory[] = "/tmp/spinquant-kernels-wasm-XXXXXX";
    if (mkdtemp(directory) == NULL) {
        CHECK_MSG(0, "cannot create a temporary directory");
        return;
    }
    char simd_directory[256], relaxed_directory[256];
    snprintf(simd_directory, sizeof(simd_directory), "%s/simd128", directory);
    snprintf(relaxed_directory, sizeof(relaxed_directory), "%s/relaxed", directory);
    CHECK_MSG(build_and_run(simd_directory, "-msimd128") == 0, "the SIMD128 kernel test failed");
    CHECK_MSG(build_and_run(relaxed_directory, "-msimd128 -mrelaxed-simd") == 0, "the relaxed-SIMD kernel test failed");

    char command[512];
    snprintf(command, sizeof(command), "rm -rf %s", directory);
    run_command(command);
}

int main(void) {
    RUN_TEST(test_wasm_kernels);
    TEST_MAIN_END();
}
