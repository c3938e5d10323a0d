import { StartupError } from '../startup/failures.js';
import {
  bindingVersion,
  buildsUnderWay,
  BuildRefused,
  buildForThisMachine,
  checkBuildable,
  localBuilds,
  probeBinding,
  removeLocalBuilds,
  type GpuChoice,
  type LlamaBinary,
  type LocalBuild,
} from '../engines/llama-cpp/local-build.js';

/** `parlance engine status|build|remove`: which llama.cpp binary the embedded engine loads, and compiling one for this machine. */

function backend(gpu: string | false): string {
  return gpu === false ? 'CPU' : gpu === 'cuda' ? 'CUDA' : gpu === 'vulkan' ? 'Vulkan' : gpu === 'metal' ? 'Metal' : gpu;
}

function describe(binary: LlamaBinary): string {
  return `${binary.binary} (${backend(binary.gpu)}), llama.cpp ${binary.release}, node-llama-cpp ${bindingVersion()}`;
}

function buildLine(build: LocalBuild): string {
  return `  ${build.name}  built ${build.builtAt.toISOString().slice(0, 16).replace('T', ' ')} UTC  ${build.path}\n`;
}

export async function engineStatus(gpu: GpuChoice, write: (text: string) => void): Promise<void> {
  const running = buildsUnderWay();
  if (running.length > 0) {
    // node-llama-cpp would wait for it to finish before saying anything.
    write(`a build is under way (${running.join(', ')}): a server starting now waits for it, then loads it if it succeeds\n`);
    return;
  }
  const binary = await probeBinding(gpu);
  write(`llama.cpp binary a server loads (--gpu ${gpu}): ${describe(binary)}\n`);
  write(`dispatch loop: ${binary.dispatchLoop}\n`);
  const builds = localBuilds();
  if (builds.length > 0) {
    write('local builds:\n');
    for (const build of builds) write(buildLine(build));
  }
  if (binary.binary === 'prebuilt') write("'parlance engine build' compiles llama.cpp for this machine (optional; offline, 10-60 minutes of CPU).\n");
}

export async function engineBuild(options: { gpu: GpuChoice; patchDispatch: boolean }, write: (text: string) => void): Promise<number> {
  let source;
  try {
    source = checkBuildable();
  } catch (error) {
    if (error instanceof BuildRefused) throw new StartupError(`cannot build llama.cpp: ${error.message}`);
    throw error;
  }
  write(
    `Building llama.cpp ${source.release}, bundled with node-llama-cpp ${bindingVersion()}, for this machine ` +
      `(--gpu ${options.gpu}, this machine's compiler and CPU instructions). Nothing is downloaded. ` +
      'This takes 10-60 minutes of CPU; a server running now keeps its binary, and one starting meanwhile waits for the build.\n',
  );
  const startedAt = performance.now();
  let result;
  try {
    result = await buildForThisMachine(options);
  } catch (error) {
    if (error instanceof BuildRefused) throw new StartupError(`cannot build llama.cpp: ${error.message}`);
    throw error;
  }
  const minutes = ((performance.now() - startedAt) / 60_000).toFixed(0);
  if (result.patchNote !== undefined) write(`dispatch loop: ${result.patchNote}\n`);
  if (result.binary.binary !== 'local build') {
    write(`Built in ${minutes} min, but a server would still load the ${describe(result.binary)}: 'parlance engine status' shows what is on disk.\n`);
    return 1;
  }
  write(
    `Built in ${minutes} min. A server started from now on loads the ${describe(result.binary)}, dispatch loop ${result.binary.dispatchLoop}. ` +
      "Restart a running server to use it; 'parlance engine remove' goes back to the prebuilt binary. " +
      'Reinstalling the npm packages (npm ci) removes the build too.\n',
  );
  return 0;
}

export async function engineRemove(write: (text: string) => void): Promise<void> {
  const removed = await removeLocalBuilds();
  if (removed.length === 0) write('no local build to remove; the prebuilt binary is in use\n');
  else {
    write('removed:\n');
    for (const build of removed) write(buildLine(build));
    write('A server started from now on loads the prebuilt binary.\n');
  }
}
