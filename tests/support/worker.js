// A Worker bundled the way Wrangler does it (esbuild, conditions workerd/worker/browser, the
// .wasm kept as a module file) with `poolswitch-wasm` resolved to the built pkg/, run in
// workerd through Miniflare.
import { mkdtemp, mkdir, symlink, copyFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { ROOT } from "../js/mock.js";

/**
 * Copies `files` (the entry first, then what it imports by relative path) into a temp dir and
 * bundles the entry. Resolves to { files, wasmFiles, modules, remove }: `files` are the
 * bundle's, `modules` the Miniflare
 * options that load the bundle, `remove` deletes the dir. `pkg`: the package directory
 * (the benchmarks compare builds).
 */
export async function bundleWorker(files, { pkg = join(ROOT, "pkg") } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "poolswitch-workerd-"));
  await mkdir(join(dir, "node_modules"));
  await symlink(pkg, join(dir, "node_modules", "poolswitch-wasm"), "dir");
  for (const f of files) await copyFile(f, join(dir, basename(f)));
  const dist = join(dir, "dist");
  await build({
    entryPoints: [join(dir, basename(files[0]))],
    bundle: true,
    format: "esm",
    conditions: ["workerd", "worker", "browser"],
    loader: { ".wasm": "copy" },
    outdir: dist,
    logLevel: "warning",
  });
  const bundled = await readdir(dist);
  return {
    files: bundled,
    wasmFiles: bundled.filter((f) => f.endsWith(".wasm")),
    modules: {
      modules: true,
      scriptPath: join(dist, basename(files[0])),
      modulesRoot: dist,
      modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
      compatibilityDate: "2025-09-01",
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** One Worker from `files` with `bindings`. Resolves to { mf, wasmFiles, dispose }. */
export async function startWorker(files, bindings, options) {
  const bundle = await bundleWorker(files, options);
  const mf = new Miniflare({ ...bundle.modules, bindings });
  await mf.ready;
  return {
    mf,
    wasmFiles: bundle.wasmFiles,
    async dispose() {
      await mf.dispose();
      await bundle.remove();
    },
  };
}
