// Bundles a Worker the way Wrangler does (esbuild, conditions workerd/worker/browser, the .wasm
// kept as a module file) with `poolswitch-wasm` resolved to the built pkg/, and starts Miniflare.
import { mkdtemp, mkdir, symlink, copyFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { build } from "esbuild";
import { Miniflare } from "miniflare";

/** `files`: paths copied next to the entry (the entry first). Resolves to { mf, wasmFiles }. */
export async function startWorker(root, files, bindings) {
  const dir = await mkdtemp(join(tmpdir(), "poolswitch-workerd-"));
  await mkdir(join(dir, "node_modules"));
  await symlink(join(root, "pkg"), join(dir, "node_modules", "poolswitch-wasm"), "dir");
  for (const f of files) await copyFile(f, join(dir, basename(f)));
  await build({
    entryPoints: [join(dir, basename(files[0]))],
    bundle: true,
    format: "esm",
    conditions: ["workerd", "worker", "browser"],
    loader: { ".wasm": "copy" },
    outdir: join(dir, "dist"),
    logLevel: "warning",
  });
  const wasmFiles = (await readdir(join(dir, "dist"))).filter((f) => f.endsWith(".wasm"));
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(dir, "dist", basename(files[0])),
    modulesRoot: join(dir, "dist"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2025-09-01",
    bindings,
  });
  await mf.ready;
  return { mf, wasmFiles };
}
