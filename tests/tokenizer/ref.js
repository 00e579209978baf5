// tests/tokenizer/ref.js — the reference side of empo's tokenizer tests:
// Hugging Face `tokenizers` (Rust, via its npm binding) and @lenml's
// transformers.js-based tokenizers, run on files the Lua tests write.
//
//   node ref.js NPM_DIR encode    TOKENIZER_JSON IN OUT [--special-as-text] [--add-special]
//   node ref.js NPM_DIR decode    TOKENIZER_JSON IN OUT [--skip-special]
//   node ref.js NPM_DIR normalize TOKENIZER_JSON IN OUT
//   node ref.js NPM_DIR lenml     PACKAGE IN OUT              (@lenml/tokenizer-PACKAGE encode)
//   node ref.js NPM_DIR chat      CONFIG_JSON IN OUT          (its chat_template, by @huggingface/jinja)
//   node ref.js NPM_DIR bench     TOKENIZER_JSON PACKAGE TEXT_FILE REPEATS
//
// Texts travel as hex-encoded UTF-8, one per line (any byte survives);
// ids as space-separated numbers, one line per text. `chat` reads JSON
// lines {"messages": [...], "add_generation_prompt": bool}.
'use strict';
const fs = require('fs');
const path = require('path');

const [npmDir, mode, ...args] = process.argv.slice(2);
const need = (name) => require(path.join(path.resolve(npmDir), 'node_modules', name));
const flags = new Set(args.filter((a) => a.startsWith('--')));
const pos = args.filter((a) => !a.startsWith('--'));

const unhex = (line) => Buffer.from(line, 'hex').toString('utf8');
const hex = (s) => Buffer.from(s, 'utf8').toString('hex');
const readLines = (file) => {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
};

// special=false in empo: the special tokens' text is plain text. HF's node
// binding has no switch for it, so the oracle is the same file with the
// special tokens moved from added_tokens into the model's vocab (where
// nothing matches them, and every other id stays as it was).
function hfTokenizer(file, specialAsText) {
  const { Tokenizer } = need('tokenizers');
  if (!specialAsText) return Tokenizer.fromFile(file);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const t of json.added_tokens) if (t.special && !(t.content in json.model.vocab)) json.model.vocab[t.content] = t.id;
  json.added_tokens = json.added_tokens.filter((t) => !t.special);
  return Tokenizer.fromString(JSON.stringify(json));
}

function lenml(pkg) {
  return need('@lenml/tokenizer-' + pkg).fromPreTrained();
}

async function main() {
  if (mode === 'encode') {
    const [file, input, output] = pos;
    const tok = hfTokenizer(file, flags.has('--special-as-text'));
    const out = [];
    for (const line of readLines(input)) {
      const enc = await tok.encode(unhex(line), null, { addSpecialTokens: flags.has('--add-special') });
      out.push(enc.getIds().join(' '));
    }
    fs.writeFileSync(output, out.join('\n') + '\n');
  } else if (mode === 'decode') {
    const [file, input, output] = pos;
    const tok = hfTokenizer(file, false);
    const out = [];
    for (const line of readLines(input)) {
      const ids = line === '' ? [] : line.split(' ').map(Number);
      out.push(hex(await tok.decode(ids, flags.has('--skip-special'))));
    }
    fs.writeFileSync(output, out.join('\n') + '\n');
  } else if (mode === 'normalize') {
    const [file, input, output] = pos;
    const norm = hfTokenizer(file, false).getNormalizer();
    const out = readLines(input).map((l) => hex(norm ? norm.normalizeString(unhex(l)) : unhex(l)));
    fs.writeFileSync(output, out.join('\n') + '\n');
  } else if (mode === 'lenml') {
    const [pkg, input, output] = pos;
    const tok = lenml(pkg);
    const out = readLines(input).map((l) => tok.encode(unhex(l), { add_special_tokens: false }).join(' '));
    fs.writeFileSync(output, out.join('\n') + '\n');
  } else if (mode === 'chat') {
    const [config, input, output] = pos;
    const { Template } = need('@huggingface/jinja');
    const cfg = JSON.parse(fs.readFileSync(config, 'utf8'));
    const tpl = new Template(cfg.chat_template);
    const out = readLines(input).map((l) => {
      const req = JSON.parse(l);
      const ctx = { messages: req.messages, add_generation_prompt: req.add_generation_prompt,
                    bos_token: cfg.bos_token, eos_token: cfg.eos_token };
      if (req.enable_thinking !== null && req.enable_thinking !== undefined) ctx.enable_thinking = req.enable_thinking;
      return hex(tpl.render(ctx));
    });
    fs.writeFileSync(output, out.join('\n') + '\n');
  } else if (mode === 'bench') {
    const [file, pkg, textFile, repeatsArg] = pos;
    const repeats = Number(repeatsArg || 3);
    const text = fs.readFileSync(textFile, 'utf8');
    const mb = Buffer.byteLength(text) / 1e6;
    const lines = text.split('\n');
    const best = async (fn) => {
      let t = Infinity, n = 0;
      for (let r = 0; r < repeats; r++) {
        const t0 = process.hrtime.bigint();
        n = await fn();
        t = Math.min(t, Number(process.hrtime.bigint() - t0) / 1e9);
      }
      return { mbps: mb / t, tokens: n };
    };
    const hf = hfTokenizer(file, false);
    const res = {};
    res.hf_whole = await best(async () => (await hf.encode(text, null, { addSpecialTokens: false })).getLength());
    res.hf_lines = await best(async () => {
      let n = 0;
      for (const l of lines) n += (await hf.encode(l, null, { addSpecialTokens: false })).getLength();
      return n;
    });
    const lt = lenml(pkg);
    res.lenml_whole = await best(async () => lt.encode(text, { add_special_tokens: false }).length);
    process.stdout.write(JSON.stringify(res) + '\n');
  } else {
    throw new Error('ref.js: unknown mode ' + mode);
  }
}

main().catch((e) => {
  process.stderr.write('ref.js: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
