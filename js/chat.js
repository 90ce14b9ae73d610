// Chat prompts: the model's Jinja chat template rendered with @huggingface/jinja, as
// transformers' apply_chat_template renders it, then tokenized with special tokens parsed.
import { Template } from '@huggingface/jinja';
import { ErrorCode, SpinquantError, describeValue } from './errors.js';

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);

function checkMessages(messages) {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `messages must be a non-empty array of { role, content } objects, got ${describeValue(messages)}`);
  }
  messages.forEach((message, index) => {
    if (typeof message !== 'object' || message === null) {
      throw new SpinquantError(ErrorCode.INVALID_ARG, `message ${index} is ${describeValue(message)}, expected { role, content }`);
    }
    if (!ROLES.has(message.role)) {
      throw new SpinquantError(ErrorCode.INVALID_ARG, `message ${index} has role ${describeValue(message.role)}, expected 'system', 'user', 'assistant' or 'tool'`);
    }
    if (typeof message.content !== 'string') {
      throw new SpinquantError(ErrorCode.INVALID_ARG, `message ${index} has content ${describeValue(message.content)}, expected a string`);
    }
  });
}

const templates = new Map();

function compile(source) {
  let template = templates.get(source);
  if (template === undefined) {
    try {
      template = new Template(source);
    } catch (error) {
      throw new SpinquantError(ErrorCode.FORMAT, `the chat template cannot be parsed: ${error.message}`, { cause: error });
    }
    templates.set(source, template);
  }
  return template;
}

/**
 * Renders messages with templateSource. bosToken and eosToken are the texts of the BOS and EOS
 * tokens, and variables adds or overrides template variables (such as tools).
 */
export function renderChat(templateSource, messages, { addGenerationPrompt = true, bosToken, eosToken, variables = {} } = {}) {
  checkMessages(messages);
  const template = compile(templateSource);
  try {
    return template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: bosToken,
      eos_token: eosToken,
      ...variables,
    });
  } catch (error) {
    throw new SpinquantError(ErrorCode.INVALID_ARG, `rendering the chat template failed: ${error.message}`, { cause: error });
  }
}

/**
 * Decides whether tokenizing the rendered prompt prepends BOS. transformers' apply_chat_template
 * never adds one because templates write {{ bos_token }} themselves; a template that does not
 * (the rendered text does not start with the BOS text) gets the BOS its tokenizer adds by
 * default, as llama.cpp does.
 */
export function chatAddsBos(rendered, tokenizerAddsBos, bosToken) {
  if (!tokenizerAddsBos || !bosToken) return false;
  return !rendered.startsWith(bosToken);
}
