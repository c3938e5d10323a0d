/**
 * Writes a tiny llama-architecture GGUF model with random weights, so tests can
 * load a real model through node-llama-cpp without any network access.
 *
 * Node built-ins only. The whole file is ~0.5 MB and is generated in ~20 ms.
 *
 *   npm run tiny-model -- [outPath]           (default: .cache/models/parlance-tiny.gguf)
 *   npm run tiny-model -- --bench [outPath]   (default: .cache/models/parlance-bench.gguf)
 *
 * Parlance itself serves it in demo mode and when no real model can be had.
 *
 * The dimensions are options (see TinyModelOptions). `benchModelOptions` is a
 * bigger "bench-size" variant (~305 MB) whose per-token cost on a CPU looks like
 * a small real model's, for benchmarks that must not be dominated by fixed
 * per-token overheads; it keeps every property of the tiny one. Weight scales
 * shrink with fan-in (and the residual writes with depth) so activations, and
 * hence the dim-0 trick below, stay the same size whatever the dimensions.
 *
 * Format reference: GGUF v3 (little endian). Layout of the file:
 *   header (magic, version, tensor count, kv count) · metadata KVs · tensor infos ·
 *   padding to `general.alignment` · tensor data (each tensor aligned too).
 *
 * Determinism trick (why some weights are not random):
 *   Tests ask for N tokens and must get exactly N, so the model must never sample
 *   an end-of-generation/control token on its own. We make residual-stream
 *   dimension 0 a constant "bias channel": every token embedding has dim 0 =
 *   EMBD_DIM0, no layer writes into it (the output rows of attn_output/ffn_down
 *   for dim 0 are zero) and no layer reads it (the dim-0 input column of
 *   attn_q/k/v and ffn_gate/up is zero, so it only feeds a uniform RMS-norm
 *   scale and doesn't give every position the same bias). After the final RMS
 *   norm dim 0 is therefore always a large positive value, and an output.weight
 *   row of the form [-50, 0, 0, ...] yields a hugely negative logit for that
 *   token regardless of context. We use that for <unk>, <s>, </s>, <|im_start|>
 *   and <|im_end|>.
 *
 *   Byte-fallback tokens: printable ASCII (plus \t and \n) bytes get a mild
 *   negative dim-0 weight so they are rarer than word pieces but still occur.
 *   All other bytes are suppressed like control tokens: bytes >= 0x80 can't be
 *   valid UTF-8 on their own, and a UTF-8 lead byte sampled as the *last* token
 *   is held back by node-llama-cpp as an incomplete character and never
 *   reported, so a maxTokens=N generation would appear to yield N-1 tokens.
 *   "<" is suppressed for the same reason (see isSampleableByte).
 *   Multi-byte characters still appear, via normal pieces such as "é", "▁café",
 *   "日本" and "🙂".
 */
import { randomUUID } from "node:crypto";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { endianness } from "node:os";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";

/** The tiny model's training context (llama.context_length) unless its options say otherwise. */
export const TINY_MODEL_CONTEXT_LENGTH = 2048;

export interface TinyModelOptions {
    /** Value of llama.context_length (the model's training context). Default 2048. */
    contextLength?: number;
    /** Seed of the weight PRNG; the same seed gives byte-identical files. Default 1. */
    seed?: number;
    /** Value of general.name. Default "parlance-tiny". */
    name?: string;
    /** llama.embedding_length, the residual width. Default 64. */
    embeddingLength?: number;
    /** llama.block_count, the number of transformer layers. Default 2. */
    layers?: number;
    /** llama.feed_forward_length, the FFN's hidden width. Default 128. */
    feedForwardLength?: number;
    /** llama.attention.head_count; must divide embeddingLength. Default 4. */
    heads?: number;
    /** llama.attention.head_count_kv; must divide heads. Default 2. */
    kvHeads?: number;
    /** tokenizer.chat_template. Default: ChatML ({@link CHATML_TEMPLATE}). */
    chatTemplate?: string;
}

/**
 * The "bench-size" model: 12 layers of width 768 (FFN 2048, 12 heads, 4 KV
 * heads), ~76M F32 parameters, a ~305 MB file written in ~4 s. One decoded token
 * reads every weight once, so at one CPU thread it costs about what a small real
 * model does (~23 ms on the 2-core machine of BENCHMARKS.md, vs ~0.5 ms for the
 * tiny model). Same vocabulary, template and determinism properties as the tiny
 * model: the logit gap between the likeliest token and any control token
 * measured ~60 for both.
 */
export const benchModelOptions: Readonly<TinyModelOptions> = {
    name: "parlance-bench",
    embeddingLength: 768,
    layers: 12,
    feedForwardLength: 2048,
    heads: 12,
    kvHeads: 4
};

// ---------------------------------------------------------------------------
// Model hyper-parameters
// ---------------------------------------------------------------------------

// Defaults of the dimensions (the tiny model); TinyModelOptions overrides them.
const N_EMBD = 64;
const N_HEAD = 4;
const N_HEAD_KV = 2; // grouped-query attention, like most current models
const N_LAYER = 2;
const N_FF = 128;
const RMS_EPS = 1e-5;

/** Resolved dimensions of one model. */
interface Dims {
    nEmbd: number;
    nHead: number;
    nHeadKv: number;
    nLayer: number;
    nFf: number;
    /** n_embd / n_head = llama.rope.dimension_count (16 for the tiny model). */
    headDim: number;
    /** headDim · n_head_kv: the width of K and V. */
    nEmbdKv: number;
}
const ALIGNMENT = 32;

/** Constant value of residual dim 0 (see the header comment). */
const EMBD_DIM0 = 8;
/** Dim-0 output weight for control/unknown tokens: logit ≈ -50 · (normalised dim 0). */
const CONTROL_DIM0 = -50;
/** Dim-0 output weight for printable-ASCII byte tokens: makes them rarer than pieces. */
const BYTE_DIM0 = -1;

// Weight scales (std of the gaussian-ish values) at the default dimensions.
// Other dimensions scale them by sqrt(default fan-in / fan-in), and the residual
// writes (attn_output, ffn_down) also by sqrt(N_LAYER / layers), so every
// activation keeps the tiny model's size (at the defaults the factors are 1).
const EMBD_STD = 1.0;
const ATTN_STD = 0.3; // large enough that the prompt visibly changes greedy output
const FFN_STD = 0.15;
const OUTPUT_STD = 0.35;

export const CHATML_TEMPLATE =
    "{% for message in messages %}" +
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
    "{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * ChatML as the DeepSeek-R1 distills and QwQ write it: past replies lose their thinking, and a new reply opens
 * with `<think>`. node-llama-cpp recognises the thought segment from it, so a tiny model written with this
 * template is a reasoning model: it "thinks" from its first token. "<" is never sampled (see isSampleableByte),
 * so it never closes the thought itself; a thought budget does.
 */
export const THINKING_CHATML_TEMPLATE =
    "{% for message in messages %}" +
    "{{'<|im_start|>' + message['role'] + '\\n'}}" +
    "{% if message['role'] == 'assistant' and message['reasoning_content'] %}{{'<think>\\n' + message['reasoning_content'] + '\\n</think>\\n\\n'}}{% endif %}" +
    "{{message['content'] + '<|im_end|>' + '\\n'}}" +
    "{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}";

// ---------------------------------------------------------------------------
// Vocabulary (SentencePiece-style, tokenizer.ggml.model = "llama")
// ---------------------------------------------------------------------------

// Plain objects rather than enums so the file also works under type-stripping
// (erasableSyntaxOnly / node --experimental-strip-types).

/** llama.cpp token attributes (tokenizer.ggml.token_type values). */
const TokenType = { Normal: 1, Unknown: 2, Control: 3, Byte: 6 } as const;
type TokenType = (typeof TokenType)[keyof typeof TokenType];

interface Vocab {
    tokens: string[];
    scores: number[];
    types: TokenType[];
}

/** Id of the byte token <0x00>; <0xNN> is FIRST_BYTE_ID + 0xNN. */
const FIRST_BYTE_ID = 5;

/**
 * Byte tokens the model may sample: printable ASCII, \t and \n, i.e. bytes that
 * are complete UTF-8 text on their own. "<" is excluded because ChatML's text
 * stop trigger is "<|im_end|>": node-llama-cpp holds back a trailing "<" as a
 * possible trigger prefix, so as the last token it would never be reported.
 */
function isSampleableByte(b: number): boolean {
    return ((b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a) && b !== 0x3c;
}

/** SentencePiece's word-boundary marker; llama.cpp renders it as a space. */
const SP = "\u2581";

const WORDS = [
    "the", "a", "an", "and", "or", "to", "of", "in", "is", "it", "that", "this",
    "you", "I", "we", "hello", "world", "yes", "no", "not", "with", "for", "on",
    "are", "be", "have", "can", "will", "what", "how", "why", "good", "time",
    "day", "cat", "dog", "model", "token", "test", "tiny", "café", "naïve", "über"
];
// Pieces without a leading space (word-internal or attached to the previous token).
const SUFFIXES = ["ing", "ed", "er", "ly", "s", "é", "ü", "ñ", "日本", "語", "🙂", "…", "—"];
const PUNCTUATION = [".", ",", "!", "?", ":", ";", "'", "\"", "-", "(", ")"];

/**
 * Builds the token list. Layout: 0 <unk>, 1 <s>, 2 </s>, 3 <|im_start|>,
 * 4 <|im_end|>, then the 256 byte-fallback tokens, then the normal pieces.
 *
 * llama.cpp's SPM tokenizer starts from single characters and only merges a
 * pair when the concatenation is itself a token, so every multi-character piece
 * also gets all of its prefixes (▁h, ▁he, ▁hel, ▁hell, ▁hello) to be reachable.
 * Scores grow with length so that longer pieces win the merges.
 */
function buildVocab(): Vocab {
    const tokens: string[] = [];
    const scores: number[] = [];
    const types: TokenType[] = [];
    const seen = new Set<string>();
    const add = (text: string, type: TokenType, score: number): void => {
        if (seen.has(text)) return;
        seen.add(text);
        tokens.push(text);
        types.push(type);
        scores.push(score);
    };

    add("<unk>", TokenType.Unknown, 0);
    add("<s>", TokenType.Control, 0);
    add("</s>", TokenType.Control, 0);
    add("<|im_start|>", TokenType.Control, 0);
    add("<|im_end|>", TokenType.Control, 0);
    if (tokens.length !== FIRST_BYTE_ID) throw new Error("unexpected special-token count");
    for (let b = 0; b < 256; b++)
        add(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, TokenType.Byte, 0);

    const pieces: string[] = [SP];
    for (let c = 0; c < 26; c++) {
        const letter = String.fromCharCode(97 + c);
        pieces.push(letter, SP + letter);
    }
    for (let d = 0; d < 10; d++) pieces.push(String(d));
    pieces.push(...PUNCTUATION, ...SUFFIXES);
    for (const word of WORDS) pieces.push(SP + word);

    for (const piece of pieces) {
        const chars = Array.from(piece); // code points, as the SPM tokenizer splits them
        for (let len = 1; len <= chars.length; len++) {
            const prefix = chars.slice(0, len).join("");
            add(prefix, TokenType.Normal, len);
        }
    }
    return { tokens, scores, types };
}

// ---------------------------------------------------------------------------
// Deterministic PRNG
// ---------------------------------------------------------------------------

/** mulberry32: tiny, fast, good enough for random weights. Returns [0, 1). */
function mulberry32(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

/** Standard-normal sampler (Box-Muller) on top of a uniform PRNG. */
function gaussian(uniform: () => number): () => number {
    return () => {
        const u1 = 1 - uniform(); // (0, 1], avoids log(0)
        const u2 = uniform();
        return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    };
}

// ---------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------

interface Tensor {
    name: string;
    /** ggml order: ne0 first. A [ne0, ne1] matrix is ne1 rows of ne0 floats. */
    dims: number[];
    data: Float32Array;
}

function buildTensors(vocab: Vocab, seed: number, dims: Dims): Tensor[] {
    const { nEmbd, nLayer, nFf, nEmbdKv } = dims;
    const randn = gaussian(mulberry32(seed));
    const random = (dims: number[], std: number): Float32Array => {
        const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
        for (let i = 0; i < data.length; i++) data[i] = randn() * std;
        return data;
    };
    const ones = (n: number): Float32Array => new Float32Array(n).fill(1);
    const nVocab = vocab.tokens.length;

    // token_embd [n_embd, n_vocab]: row t (n_embd floats) is token t's embedding.
    const tokenEmbd = random([nEmbd, nVocab], EMBD_STD);
    for (let t = 0; t < nVocab; t++) tokenEmbd[t * nEmbd] = EMBD_DIM0;

    // Fan-in and depth scaling of the weight stds (all 1 at the default dimensions).
    const embdScale = Math.sqrt(N_EMBD / nEmbd);
    const ffScale = Math.sqrt(N_FF / nFf);
    const depthScale = Math.sqrt(N_LAYER / nLayer);
    const attnStd = ATTN_STD * embdScale;
    const ffnStd = FFN_STD * embdScale;

    // output [n_embd, n_vocab]: row t gives token t's logit = row · normed residual.
    // The dim-0 weights set below are not scaled: normalised dim 0 keeps its size.
    const output = random([nEmbd, nVocab], OUTPUT_STD * embdScale);
    for (let t = 0; t < nVocab; t++) {
        const row = output.subarray(t * nEmbd, (t + 1) * nEmbd);
        const type = vocab.types[t];
        if (type === TokenType.Control || type === TokenType.Unknown || (type === TokenType.Byte && !isSampleableByte(t - FIRST_BYTE_ID))) {
            // Never sampled: only dim 0 (always large and positive) contributes.
            row.fill(0);
            row[0] = CONTROL_DIM0;
        } else if (type === TokenType.Byte) {
            row[0] = BYTE_DIM0;
        } else {
            row[0] = 0; // no constant bias for normal pieces
        }
    }

    const tensors: Tensor[] = [
        { name: "token_embd.weight", dims: [nEmbd, nVocab], data: tokenEmbd },
        // output_norm dim 0 must stay 1 (positive) so the control-token trick holds.
        { name: "output_norm.weight", dims: [nEmbd], data: ones(nEmbd) },
        { name: "output.weight", dims: [nEmbd, nVocab], data: output }
    ];

    /**
     * Random [n_embd(in), out] matrix that ignores residual dim 0: the element
     * at index 0 of every row (n_embd floats each) multiplies dim 0.
     */
    const readsNoDim0 = (nOut: number, std: number): Float32Array => {
        const data = random([nEmbd, nOut], std);
        for (let row = 0; row < nOut; row++) data[row * nEmbd] = 0;
        return data;
    };

    for (let l = 0; l < nLayer; l++) {
        // attn_output [n_embd(in), n_embd(out)]: the first block of n_embd floats
        // is what writes into residual dim 0; zero it to keep dim 0 constant.
        const attnOutput = random([nEmbd, nEmbd], attnStd * depthScale);
        attnOutput.fill(0, 0, nEmbd);
        // ffn_down [n_ff(in), n_embd(out)]: likewise its first block of n_ff floats.
        const ffnDown = random([nFf, nEmbd], FFN_STD * ffScale * depthScale);
        ffnDown.fill(0, 0, nFf);

        const p = `blk.${l}.`;
        tensors.push(
            { name: p + "attn_norm.weight", dims: [nEmbd], data: ones(nEmbd) },
            { name: p + "attn_q.weight", dims: [nEmbd, nEmbd], data: readsNoDim0(nEmbd, attnStd) },
            { name: p + "attn_k.weight", dims: [nEmbd, nEmbdKv], data: readsNoDim0(nEmbdKv, attnStd) },
            { name: p + "attn_v.weight", dims: [nEmbd, nEmbdKv], data: readsNoDim0(nEmbdKv, attnStd) },
            { name: p + "attn_output.weight", dims: [nEmbd, nEmbd], data: attnOutput },
            { name: p + "ffn_norm.weight", dims: [nEmbd], data: ones(nEmbd) },
            { name: p + "ffn_gate.weight", dims: [nEmbd, nFf], data: readsNoDim0(nFf, ffnStd) },
            { name: p + "ffn_up.weight", dims: [nEmbd, nFf], data: readsNoDim0(nFf, ffnStd) },
            { name: p + "ffn_down.weight", dims: [nFf, nEmbd], data: ffnDown }
        );
    }
    return tensors;
}

// ---------------------------------------------------------------------------
// GGUF serialisation
// ---------------------------------------------------------------------------

/** GGUF metadata value types (the subset used here). */
const GgufType = { Uint32: 4, Int32: 5, Float32: 6, Bool: 7, String: 8, Array: 9 } as const;
type G = typeof GgufType;

const GGML_TYPE_F32 = 0;

type KvValue =
    | { type: G["Uint32"] | G["Int32"] | G["Float32"]; value: number }
    | { type: G["Bool"]; value: boolean }
    | { type: G["String"]; value: string }
    | { type: G["Array"]; itemType: G["String"]; value: string[] }
    | { type: G["Array"]; itemType: G["Int32"] | G["Float32"]; value: number[] };

/** Append-only little-endian byte writer. */
class ByteWriter {
    private readonly chunks: Buffer[] = [];
    length = 0;

    private push(buf: Buffer): void {
        this.chunks.push(buf);
        this.length += buf.length;
    }

    u32(v: number): void {
        const b = Buffer.allocUnsafe(4);
        b.writeUInt32LE(v);
        this.push(b);
    }

    i32(v: number): void {
        const b = Buffer.allocUnsafe(4);
        b.writeInt32LE(v);
        this.push(b);
    }

    u64(v: number): void {
        const b = Buffer.allocUnsafe(8);
        b.writeBigUInt64LE(BigInt(v));
        this.push(b);
    }

    f32(v: number): void {
        const b = Buffer.allocUnsafe(4);
        b.writeFloatLE(v);
        this.push(b);
    }

    u8(v: number): void {
        this.push(Buffer.from([v]));
    }

    /** GGUF string: u64 byte length + UTF-8 bytes, no terminator. */
    str(s: string): void {
        const bytes = Buffer.from(s, "utf8");
        this.u64(bytes.length);
        this.push(bytes);
    }

    f32Array(data: Float32Array): void {
        if (endianness() === "LE") {
            // Same bytes as the loop below, without a copy (matters for the bench-size model).
            this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
            return;
        }
        const b = Buffer.allocUnsafe(data.length * 4);
        for (let i = 0; i < data.length; i++) b.writeFloatLE(data[i] ?? 0, i * 4);
        this.push(b);
    }

    padTo(alignment: number): void {
        const pad = (alignment - (this.length % alignment)) % alignment;
        if (pad > 0) this.push(Buffer.alloc(pad));
    }

    toBuffer(): Buffer {
        return Buffer.concat(this.chunks, this.length);
    }
}

function writeKv(w: ByteWriter, key: string, kv: KvValue): void {
    w.str(key);
    w.u32(kv.type);
    switch (kv.type) {
        case GgufType.Uint32: w.u32(kv.value); break;
        case GgufType.Int32: w.i32(kv.value); break;
        case GgufType.Float32: w.f32(kv.value); break;
        case GgufType.Bool: w.u8(kv.value ? 1 : 0); break;
        case GgufType.String: w.str(kv.value); break;
        case GgufType.Array:
            w.u32(kv.itemType);
            w.u64(kv.value.length);
            if (kv.itemType === GgufType.String) {
                for (const s of kv.value) w.str(s);
            } else if (kv.itemType === GgufType.Int32) {
                for (const n of kv.value) w.i32(n);
            } else {
                for (const n of kv.value) w.f32(n);
            }
            break;
    }
}

const u32 = (value: number): KvValue => ({ type: GgufType.Uint32, value });
const f32 = (value: number): KvValue => ({ type: GgufType.Float32, value });
const str = (value: string): KvValue => ({ type: GgufType.String, value });
const bool = (value: boolean): KvValue => ({ type: GgufType.Bool, value });

/** Checks the dimension options and fills in the defaults. */
function resolveDims(opts: TinyModelOptions): Dims {
    const positive = (key: keyof TinyModelOptions, value: number): number => {
        if (!Number.isInteger(value) || value < 1) throw new RangeError(`${key} must be a positive integer, got ${value}`);
        return value;
    };
    const nEmbd = positive("embeddingLength", opts.embeddingLength ?? N_EMBD);
    const nHead = positive("heads", opts.heads ?? N_HEAD);
    const nHeadKv = positive("kvHeads", opts.kvHeads ?? N_HEAD_KV);
    const nLayer = positive("layers", opts.layers ?? N_LAYER);
    const nFf = positive("feedForwardLength", opts.feedForwardLength ?? N_FF);
    if (nEmbd % nHead !== 0) throw new RangeError(`heads (${nHead}) must divide embeddingLength (${nEmbd})`);
    if (nHead % nHeadKv !== 0) throw new RangeError(`kvHeads (${nHeadKv}) must divide heads (${nHead})`);
    const headDim = nEmbd / nHead;
    // RoPE rotates pairs of dimensions.
    if (headDim % 2 !== 0) throw new RangeError(`embeddingLength / heads must be even, got ${headDim}`);
    return { nEmbd, nHead, nHeadKv, nLayer, nFf, headDim, nEmbdKv: headDim * nHeadKv };
}

/** Returns the whole GGUF file in memory. Same options → identical bytes. */
export function tinyModelBytes(opts: TinyModelOptions = {}): Buffer {
    const contextLength = opts.contextLength ?? TINY_MODEL_CONTEXT_LENGTH;
    const seed = opts.seed ?? 1;
    const name = opts.name ?? "parlance-tiny";
    const dims = resolveDims(opts);
    if (!Number.isInteger(contextLength) || contextLength < 1)
        throw new RangeError(`contextLength must be a positive integer, got ${contextLength}`);

    const vocab = buildVocab();
    const imEndId = vocab.tokens.indexOf("<|im_end|>");
    const tensors = buildTensors(vocab, seed, dims);

    const metadata: [string, KvValue][] = [
        ["general.architecture", str("llama")],
        ["general.name", str(name)],
        ["general.file_type", u32(0)], // ALL_F32
        ["general.alignment", u32(ALIGNMENT)],
        ["llama.vocab_size", u32(vocab.tokens.length)],
        ["llama.context_length", u32(contextLength)],
        ["llama.embedding_length", u32(dims.nEmbd)],
        ["llama.block_count", u32(dims.nLayer)],
        ["llama.feed_forward_length", u32(dims.nFf)],
        ["llama.attention.head_count", u32(dims.nHead)],
        ["llama.attention.head_count_kv", u32(dims.nHeadKv)],
        ["llama.rope.dimension_count", u32(dims.headDim)],
        ["llama.attention.layer_norm_rms_epsilon", f32(RMS_EPS)],
        ["tokenizer.ggml.model", str("llama")],
        ["tokenizer.ggml.tokens", { type: GgufType.Array, itemType: GgufType.String, value: vocab.tokens }],
        ["tokenizer.ggml.scores", { type: GgufType.Array, itemType: GgufType.Float32, value: vocab.scores }],
        ["tokenizer.ggml.token_type", { type: GgufType.Array, itemType: GgufType.Int32, value: vocab.types }],
        ["tokenizer.ggml.bos_token_id", u32(1)],
        // ChatML turns end with <|im_end|>, so that is the end-of-generation token.
        ["tokenizer.ggml.eos_token_id", u32(imEndId)],
        ["tokenizer.ggml.unknown_token_id", u32(0)],
        // ChatML prompts (like Qwen's) start with <|im_start|>, not BOS.
        ["tokenizer.ggml.add_bos_token", bool(false)],
        ["tokenizer.ggml.add_eos_token", bool(false)],
        // Don't prepend "▁" to text: prompt text after a special token stays as-is.
        ["tokenizer.ggml.add_space_prefix", bool(false)],
        ["tokenizer.chat_template", str(opts.chatTemplate ?? CHATML_TEMPLATE)]
    ];

    const w = new ByteWriter();
    w.u32(0x46554747); // "GGUF" as little-endian u32
    w.u32(3); // version
    w.u64(tensors.length);
    w.u64(metadata.length);
    for (const [key, kv] of metadata) writeKv(w, key, kv);

    // Tensor infos; offsets are relative to the start of the (aligned) data section.
    let offset = 0;
    for (const t of tensors) {
        w.str(t.name);
        w.u32(t.dims.length);
        for (const d of t.dims) w.u64(d);
        w.u32(GGML_TYPE_F32);
        w.u64(offset);
        offset += Math.ceil((t.data.length * 4) / ALIGNMENT) * ALIGNMENT;
    }

    w.padTo(ALIGNMENT);
    for (const t of tensors) {
        w.f32Array(t.data);
        w.padTo(ALIGNMENT); // the data section starts aligned, so this aligns the next tensor
    }
    return w.toBuffer();
}

/** Writes the model to `path` atomically (temp file + rename), creating parent dirs. */
export async function writeTinyModel(path: string, opts?: TinyModelOptions): Promise<void> {
    const bytes = tinyModelBytes(opts);
    await mkdir(dirname(path), { recursive: true });
    // Unique temp name in the same directory (rename is only atomic within a filesystem).
    const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
    try {
        await writeFile(tmp, bytes);
        await rename(tmp, path);
    } catch (err) {
        await rm(tmp, { force: true });
        throw err;
    }
}

/** Writes the tiny model (or the one `opts` describes) at `path` unless a file is already there; returns `path`. */
export async function ensureTinyModel(path: string, opts?: TinyModelOptions): Promise<string> {
    const exists = await stat(path).then(() => true, () => false);
    if (!exists) await writeTinyModel(path, opts);
    return path;
}

const isDirectRun = process.argv[1] != null && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isDirectRun) {
    const args = process.argv.slice(2);
    const bench = args.includes("--bench");
    const outArg = args.find((a) => a !== "--bench");
    const outPath = resolve(outArg ?? (bench ? ".cache/models/parlance-bench.gguf" : ".cache/models/parlance-tiny.gguf"));
    await writeTinyModel(outPath, bench ? benchModelOptions : {});
    const { size } = await stat(outPath);
    console.log(`${outPath} (${size} bytes, ${(size / 1024).toFixed(1)} KiB)`);
}
