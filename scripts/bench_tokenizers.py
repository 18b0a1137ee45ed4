"""Tokenisation throughput of Hugging Face `tokenizers` on the vocabulary a text run
fitted, configured to split like the crate's tokenizer (lower-cased words of letters and
digits with inner apostrophes, every other non-space character alone), padded and
truncated to the same length. Prints one JSON object: texts/s with the library's
parallel batch encoding and with one thread, and the ids of each distinct text (so the
caller can check both sides agree).

usage: bench_tokenizers.py BENCH.json
  BENCH.json  {"words": [...], "texts": [...], "repeat": N, "rounds": R, "max_length": L}
"""
import json
import os
import statistics
import sys
import time


def build(words, max_length):
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    word = r"[^\W_]+(?:['’][^\W_]+)*|[^\w\s]|_"
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(word), "isolated")]
    )
    tok.enable_truncation(max_length)
    tok.enable_padding(length=max_length, pad_id=0, pad_token="<pad>")
    return tok


def texts_per_second(tok, texts, rounds):
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        tok.encode_batch(texts)
        rates.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> int:
    spec = json.load(open(sys.argv[1]))
    import tokenizers

    tok = build(spec["words"], spec["max_length"])
    distinct = spec["texts"]
    texts = distinct * spec["repeat"]
    parallel = texts_per_second(tok, texts, spec["rounds"])
    # The library reads this variable at each batch: one thread, like the crate's encoder.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    single = texts_per_second(tok, texts, spec["rounds"])
    ids = [e.ids for e in tok.encode_batch(distinct)]
    print(json.dumps({
        "tokenizers": tokenizers.__version__,
        "parallel_texts_per_s": parallel,
        "single_thread_texts_per_s": single,
        "ids": ids,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
