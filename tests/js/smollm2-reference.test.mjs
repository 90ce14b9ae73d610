// Checks the native CLI on SmolLM2-135M-Instruct against values from independent
// implementations (Hugging Face transformers in float32 and llama.cpp's tokenizer), stored in
// tests/reference/smollm2-reference.json with the commands that produced them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = process.env.SQ_CLI ?? path.join(root, 'build/native/spinquant');
const model = path.join(root, 'models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
const wikiTest = path.resolve(root, '../shared/data/wikitext-2-raw/wiki.test.raw');
const reference = JSON.parse(readFileSync(path.join(root, 'tests/reference/smollm2-reference.json'), 'utf8'));

function runJson(args) {
  return JSON.parse(execFileSync(cli, args, { encoding: 'utf8', maxBuffer: 64 << 20 }));
}

for (const [index, item] of reference.tokenize.entries()) {
  test(`tokenize case ${index} matches reference ids`, () => {
    const out = runJson(['tokenize', model, '--prompt', item.text, '--json']);
    assert.deepEqual(out.ids, item.ids, `text ${JSON.stringify(item.text.slice(0, 40))}`);
  });
}

for (const [name, messages] of [['user_only', null], ['with_system', 'You are a helpful assistant.']]) {
  test(`chat prompt ${name} matches the template's ids`, () => {
    const expected = reference.chat_prompt[name];
    const question = expected.messages.at(-1).content;
    const args = ['generate', model, '--chat', '--prompt', question, '--temperature', '0', '--max-tokens', '1', '--json'];
    if (messages !== null) args.push('--system', messages);
    const out = runJson(args);
    assert.deepEqual(out.prompt_tokens, expected.ids);
  });
}

test('chat answer is coherent English', () => {
  const out = runJson(['generate', model, '--chat', '--prompt', 'What is the capital of France?', '--temperature', '0',
    '--max-tokens', '32', '--json']);
  assert.match(out.text, /Paris/);
  // The first tokens have large logit margins in the reference, so greedy decoding must agree.
  const expected = reference.greedy.user_only.new_ids;
  assert.deepEqual(out.tokens.slice(0, 5), expected.slice(0, 5));
});

test('wikitext-2 perplexity of four windows matches transformers', () => {
  const expected = reference.wikitext2_test_ppl_first4;
  const out = runJson(['eval', model, '--text', wikiTest, '--window', '2048', '--max-windows', '4', '--threads', '2', '--json']);
  assert.equal(out.n_tokens, expected.n_tokens);
  assert.equal(out.n_predicted, expected.n_predicted);
  const relative = Math.abs(out.ppl - expected.ppl) / expected.ppl;
  assert.ok(relative < 1e-3, `ppl ${out.ppl} vs reference ${expected.ppl} (relative ${relative})`);
});
