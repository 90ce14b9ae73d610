// Compares learned rotations with random Hadamard ones. For each seed, `spinquant calibrate`
// learns R1/R2 from that seed's random Hadamard start (Cayley SGD at W16A4KV4, mode had, default
// settings unless --calibrate-args changes them). Held-out perplexity is then measured at
// W4A4KV16 and W4A4KV4, with RTN and GPTQ weights, for FP, no rotation, random Hadamard and
// learned rotations. The Markdown tables give the perplexities, the share of the
// Hadamard-to-FP gap that learning closes, and calibration seconds per iteration with peak
// memory.
//
//   node bench/learn-table.mjs --model stories260K [--seeds 5]
//   node bench/learn-table.mjs --model smollm2 --seeds 1 --hadamard-seeds 5 --gptq-hadamard-seeds 1 \
//     --max-windows 1
//
// --gptq-hadamard-seeds sets fewer Hadamard seeds for the GPTQ rows, whose evaluations take
// minutes each on SmolLM2; it must be at least --seeds. --calibrate-args adds options to every
// `spinquant calibrate` call (for example --calibrate-args="--w-bits 4", with the equals sign
// because the value starts with a dash), and --skip-gptq leaves out the GPTQ rows.
//
// Rotation files go to models/learned/ and are reused when present, with their calibration
// record. Evaluation results are cached as bench/lib.mjs describes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { evaluate, gptqArgs, mean, modelNamed, prepareTinyStoriesCalibration, root, summarize } from './lib.mjs';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'stories260K' },
    seeds: { type: 'string', default: '5' },
    'hadamard-seeds': { type: 'string' },
    'gptq-hadamard-seeds': { type: 'string' },
    'max-windows': { type: 'string', default: '0' },
    threads: { type: 'string', default: '2' },
    'calibrate-args': { type: 'string', default: '' },
    'skip-gptq': { type: 'boolean', default: false },
    cli: { type: 'string', default: path.join(root, 'build/native/spinquant') },
  },
});
const model = modelNamed(values.model);
const learnSeeds = Number(values.seeds);
const hadamardSeeds = Number(values['hadamard-seeds'] ?? values.seeds);
const gptqHadamardSeeds = Number(values['gptq-hadamard-seeds'] ?? hadamardSeeds);
for (const [name, value] of [['--seeds', learnSeeds], ['--hadamard-seeds', hadamardSeeds],
  ['--gptq-hadamard-seeds', gptqHadamardSeeds]]) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`invalid ${name} ${value}, expected a whole number of at least 1`);
    process.exit(2);
  }
}
if (hadamardSeeds < learnSeeds || gptqHadamardSeeds < learnSeeds) {
  console.error(`invalid Hadamard seed counts ${hadamardSeeds} and ${gptqHadamardSeeds}: expected at least --seeds ${learnSeeds}, ` +
    'because each learned rotation is compared with the Hadamard rotation it started from');
  process.exit(2);
}
prepareTinyStoriesCalibration();
const calibrateArgs = values['calibrate-args'].split(/\s+/).filter((arg) => arg !== '');
// The rotation files of each set of calibrate options get their own names.
const variant = calibrateArgs.length === 0 ? 'default' : calibrateArgs.map((arg) => arg.replace(/^-+/, '')).join('-');
const run = (extra) => evaluate(values.cli, model, extra, { maxWindows: values['max-windows'], threads: values.threads });

// Calibrates from seed's Hadamard start unless the rotation file exists. Returns the file and
// the calibration record: seconds per iteration, and peak resident memory in MB when measured.
function learnedRotation(seed) {
  const dir = path.join(root, 'models/learned');
  const out = path.join(dir, `${values.model}-${variant}-seed${seed}.rot`);
  const recordPath = `${out}.json`;
  if (existsSync(out) && existsSync(recordPath)) return { out, record: JSON.parse(readFileSync(recordPath, 'utf8')) };

  mkdirSync(dir, { recursive: true });
  const args = ['calibrate', ...model.args, '--text', model.calib, '--out', out, '--seed', String(seed),
    '--threads', values.threads, '--json', ...calibrateArgs];
  // GNU time reports the peak resident set size; without it the memory column stays empty.
  const timed = existsSync('/usr/bin/time');
  const command = timed ? '/usr/bin/time' : values.cli;
  const commandArgs = timed ? ['-f', 'peak_kb %M', values.cli, ...args] : args;
  process.stderr.write(`calibrating ${values.model} from seed ${seed}\n`);
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status !== 0) {
    console.error(`${values.cli} ${args.join(' ')} failed with status ${result.status}:\n${result.stderr}`);
    process.exit(1);
  }
  const summary = JSON.parse(result.stdout.trim().split('\n').pop());
  const peak = /peak_kb (\d+)/.exec(result.stderr);
  const record = {
    secondsPerIteration: summary.seconds / summary.iterations_this_run,
    iterations: summary.iterations,
    peakMB: peak ? Number(peak[1]) / 1024 : null,
  };
  writeFileSync(recordPath, JSON.stringify(record));
  return { out, record };
}

const seedsOf = (count) => Array.from({ length: count }, (_, seed) => seed);
const learned = seedsOf(learnSeeds).map(learnedRotation);
const fp = run([]).ppl;

const rows = [];
for (const [name, kv] of [['W4A4KV16', 16], ['W4A4KV4', 4]]) {
  for (const gptq of values['skip-gptq'] ? [false] : [false, true]) {
    const recipe = ['--w-bits', '4', '--a-bits', '4', '--kv-bits', String(kv), ...(gptq ? gptqArgs(model) : [])];
    const rtn = run([...recipe, '--rotation', 'none']).ppl;
    const hadamard = seedsOf(gptq ? gptqHadamardSeeds : hadamardSeeds).map((seed) => run([...recipe, '--rotation', 'hadamard', '--seed', String(seed)]).ppl);
    const sameStart = hadamard.slice(0, learnSeeds);
    const learnedPpl = learned.map(({ out }) => run([...recipe, '--rotation', out]).ppl);
    const wins = learnedPpl.filter((ppl, seed) => ppl < hadamard[seed]).length;
    const gapClosed = (mean(sameStart) - mean(learnedPpl)) / (mean(sameStart) - fp);
    rows.push([name, gptq ? 'GPTQ' : 'RTN', fp.toFixed(2), rtn.toFixed(2), summarize(hadamard), summarize(learnedPpl),
      `${wins}/${learnSeeds}`, `${(gapClosed * 100).toFixed(0)} %`]);
  }
}

const tokens = run([]).n_predicted;
console.log(`Model ${values.model}, ${tokens} predicted tokens, window ${model.window}; learned from ` +
  `${learnSeeds} seed(s) with calibrate options [${calibrateArgs.join(' ')}], ${hadamardSeeds} Hadamard seed(s) ` +
  `with RTN and ${gptqHadamardSeeds} with GPTQ.\n`);
console.log('| setting | weights | FP | no rotation | random Hadamard | learned | learned wins | gap closed |');
console.log('|---|---|---|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
console.log('\n| seed | calibration s/iteration | iterations | peak memory MB |');
console.log('|---|---|---|---|');
for (const [seed, { record }] of learned.entries()) {
  const peak = record.peakMB === null ? '—' : record.peakMB.toFixed(0);
  console.log(`| ${seed} | ${record.secondsPerIteration.toFixed(3)} | ${record.iterations} | ${peak} |`);
}
