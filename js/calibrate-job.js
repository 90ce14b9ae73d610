// The calibration job that runs inside a worker (calibrate-worker-node.js or
// calibrate-worker-browser.js): load the fp32 model, learn the rotations, write the rotation
// file, and optionally export the .spq model made with them. Every C call blocks the worker,
// which is why the job does not run on the caller's thread.
import { SpinquantError } from './errors.js';
import { loadInto } from './loader.js';
import { NativeContext } from './native.js';
import { chooseBuild } from './runtime.js';

function serializeError(error) {
  if (error instanceof SpinquantError) {
    return { code: error.code, message: error.message, nativeCode: error.nativeCode };
  }
  return { code: 'E_IO', message: `the calibration worker failed: ${error?.stack ?? error}` };
}

/** Runs one job described by message and reports through post(message, transfer). */
export async function runCalibrationJob(platform, message, post) {
  let native = null;
  try {
    const { options } = message;
    const choice = chooseBuild(platform, { threads: options.threads, simd: options.simd });
    native = await NativeContext.create(platform, choice);
    const source = message.source.kind === 'stream' ? message.source.stream : message.source.value;
    await loadInto(native, platform, source, {
      tokenizer: message.tokenizerBytes ?? undefined,
      cache: options.cache,
      keepSource: Boolean(options.spq),
      totalBytes: message.source.totalBytes,
      onProgress: (event) => post({ type: 'progress', event }),
    });
    const modelPath = native.sourcePath();
    if (options.spq && !modelPath) {
      throw new SpinquantError('E_UNSUPPORTED', 'rotation learning needs the original model (llama2.c or GGUF), not a .spq file or a folder');
    }

    // A tokenizer file is needed again by the export, which reads the model file anew.
    let tokenizerPath = '';
    if (message.tokenizerBytes) {
      tokenizerPath = native.temporaryPath('tokenizer.bin');
      native.writeFile(tokenizerPath, message.tokenizerBytes);
    }

    native.module.onCalibrationProgress = (progress) => {
      post({ type: 'progress', event: { phase: 'calibrate', ...progress } });
      return false;
    };
    const rotationPath = native.temporaryPath('rotation.bin');
    const learned = native.calibrate(message.text, options, rotationPath);
    const rotation = native.module.FS.readFile(rotationPath);
    native.removeFile(rotationPath);

    let spq = null;
    let exportReport = null;
    if (options.spq) {
      post({ type: 'progress', event: { phase: 'export' } });
      native.writeFile(rotationPath, rotation);
      ({ bytes: spq, report: exportReport } = native.exportSpq(modelPath, tokenizerPath, rotationPath, { ...options.spq, mode: options.mode, seed: options.seed }));
      native.removeFile(rotationPath);
    }

    const summary = {
      iterations: learned.iterations,
      firstLoss: learned.first_loss,
      finalLoss: learned.final_loss,
      seconds: learned.seconds,
      calibrationTokens: learned.calibration_tokens,
      orthogonalityError: learned.orthogonality_error,
      runtime: { build: choice.build, simd: choice.simd, threads: choice.threads },
      spq: exportReport && {
        fileBytes: exportReport.file_bytes,
        parameters: exportReport.parameters,
        wBits: exportReport.w_bits,
        wGroup: exportReport.w_group,
        aBits: exportReport.a_bits,
        kvBits: exportReport.kv_bits,
        embedBits: exportReport.embed_bits,
        mode: exportReport.mode,
      },
    };
    const transfer = [rotation.buffer, ...(spq ? [spq.buffer] : [])];
    post({ type: 'done', rotation, spq, summary }, transfer);
  } catch (error) {
    post({ type: 'error', error: serializeError(error) });
  } finally {
    native?.free();
  }
}
