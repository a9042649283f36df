// AUTOMATIC1111's prompt syntax (issue 10): the parser vectors of modules/prompt_parser.py's docstring, BREAK,
// <lora:> tags, and the 75-token chunking of modules/sd_hijack_clip.py (comma back-off, padding, weights).
#include "harness.h"

#include "text/prompt_syntax.h"

#include <string>
#include <vector>

using koala::text::WeightedText;

namespace {

using V = std::vector<WeightedText>;

bool same(const V& a, const V& b) { return a == b; }

std::string show(const V& v) {
    std::ostringstream os;
    os.precision(17);
    for (const auto& w : v) os << "['" << w.text << "', " << w.weight << "] ";
    return os.str();
}

#define CHECK_PARSE(input, ...)                                                                            \
    do {                                                                                                   \
        const V got = koala::text::parsePromptAttention(input);                                            \
        const V want = __VA_ARGS__;                                                                        \
        KT_CHECK_MSG(same(got, want), "parse(" << input << ") = " << show(got) << " want " << show(want)); \
    } while (0)

std::shared_ptr<koala::text::ClipTokenizer> tok1() {
    static auto t = koala::text::ClipTokenizer::load(kt::fixturePath("tiny-koala-700m/tokenizer"));
    return t;
}
std::shared_ptr<koala::text::ClipTokenizer> tok2() {
    static auto t = koala::text::ClipTokenizer::load(kt::fixturePath("tiny-koala-700m/tokenizer_2"));
    return t;
}

std::string words(int n, const char* w = "cat") {
    std::string s;
    for (int i = 0; i < n; ++i) s += (i ? " " : "") + std::string(w);
    return s;
}

}  // namespace

KT_TEST(parser_docstring_vectors) {
    CHECK_PARSE("normal text", V{{"normal text", 1.0}});
    CHECK_PARSE("an (important) word", V{{"an ", 1.0}, {"important", 1.1}, {" word", 1.0}});
    CHECK_PARSE("(unbalanced", V{{"unbalanced", 1.1}});
    CHECK_PARSE("\\(literal\\]", V{{"(literal]", 1.0}});
    CHECK_PARSE("(unnecessary)(parens)", V{{"unnecessaryparens", 1.1}});
    CHECK_PARSE("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", V{{"a ", 1.0},
                                                                         {"house", 1.5730000000000004},
                                                                         {" ", 1.1},
                                                                         {"on", 1.0},
                                                                         {" a ", 1.1},
                                                                         {"hill", 0.55},
                                                                         {", sun, ", 1.1},
                                                                         {"sky", 1.4641000000000006},
                                                                         {".", 1.1}});
}

KT_TEST(parser_break_escapes_and_edges) {
    CHECK_PARSE("a BREAK b", V{{"a", 1.0}, {"BREAK", -1}, {"b", 1.0}});
    CHECK_PARSE("aBREAK b", V{{"aBREAK b", 1.0}});  // not a whole word
    CHECK_PARSE("", V{{"", 1.0}});
    CHECK_PARSE("[x]", V{{"x", 1 / 1.1}});
    CHECK_PARSE("(x:0.5)", V{{"x", 0.5}});
    CHECK_PARSE("(x: 1.5 )", V{{"x", 1.5}});
    CHECK_PARSE("x:1.5)", V{{"x:1.5)", 1.0}});  // a weight without a bracket is text
    CHECK_PARSE("a\\\\b", V{{"a\\b", 1.0}});
    CHECK_PARSE("a)b]", V{{"a)b]", 1.0}});  // unmatched closing brackets are literal
    CHECK_PARSE("((a)", V{{"a", 1.1 * 1.1}});
}

KT_TEST(lora_tags_are_removed) {
    std::vector<koala::text::LoraTag> tags;
    const std::string s = koala::text::extractLoraTags("a <lora:my_style:0.7> cat <lora:other> <hypernet:x:1>", &tags);
    KT_CHECK_EQ(s, std::string("a  cat  <hypernet:x:1>"));
    KT_CHECK_EQ(tags.size(), std::size_t(2));
    KT_CHECK_EQ(tags[0].name, std::string("my_style"));
    KT_CHECK_EQ(tags[0].weight, 0.7);
    KT_CHECK_EQ(tags[1].name, std::string("other"));
    KT_CHECK_EQ(tags[1].weight, 1.0);
}

KT_TEST(chunks_short_prompt_equals_plain) {
    for (auto tok : {tok1(), tok2()}) {
        for (const std::string& p :
             std::vector<std::string>{"a photo of a koala astronaut, highly detailed", "", words(75)}) {
            auto c = koala::text::chunkPrompt(*tok, p);
            KT_CHECK_EQ(c.chunks.size(), std::size_t(1));
            KT_CHECK(c.chunks[0].ids == tok->encodePadded(p));
            KT_CHECK(c.chunks[0].allOnes());
        }
    }
}

KT_TEST(chunks_long_break_and_comma) {
    auto& t = *tok1();
    auto c = koala::text::chunkPrompt(t, words(80));
    KT_CHECK_EQ(c.chunks.size(), std::size_t(2));
    KT_CHECK_EQ(c.tokenCount, 80);
    KT_CHECK(c.chunks[1].ids[5] != t.eosId());  // BOS, 5 tokens, then padding
    KT_CHECK_EQ(c.chunks[1].ids[6], t.eosId());
    // BREAK: a new chunk even when the first is short; the empty remainder is padding.
    c = koala::text::chunkPrompt(t, "a cat BREAK a dog", true);
    KT_CHECK_EQ(c.chunks.size(), std::size_t(2));
    KT_CHECK_EQ(c.tokenCount, 75 + 2);
    KT_CHECK(c.chunks[0].ids == t.encodePadded("a cat"));
    KT_CHECK(c.chunks[1].ids == t.encodePadded("a dog"));
    KT_CHECK_EQ(c.chunkStarts.size(), std::size_t(2));
    KT_CHECK_EQ(c.chunkStarts[1], std::size_t(12));
    // The comma back-off: a comma within the last 20 tokens of a full chunk moves what follows it to the next.
    const std::string p = words(70) + ", " + words(10, "dog");
    c = koala::text::chunkPrompt(t, p, true);
    KT_CHECK_EQ(c.chunks.size(), std::size_t(2));
    const int comma = t.encode(",")[0];
    KT_CHECK_EQ(c.chunks[0].ids[71], comma);
    KT_CHECK_EQ(c.chunks[0].ids[72], t.eosId());
    KT_CHECK(c.chunks[1].ids == t.encodePadded(words(10, "dog")));
    KT_CHECK_EQ(c.chunkStarts[1], p.find("dog"));
    // A comma too far back (more than 20 tokens before the end) does not move anything.
    c = koala::text::chunkPrompt(t, words(40) + ", " + words(40));
    KT_CHECK_EQ(c.chunks.size(), std::size_t(2));
    KT_CHECK(c.chunks[0].ids[76] == t.eosId() && c.chunks[0].ids[75] != t.eosId());
}

KT_TEST(chunk_weights_and_pad_of_second_tokenizer) {
    auto& t = *tok2();
    KT_CHECK_EQ(t.padId(), 0);
    auto c = koala::text::chunkPrompt(t, "(koala:1.5) [astronaut]");
    KT_CHECK_EQ(c.chunks.size(), std::size_t(1));
    const auto& ch = c.chunks[0];
    KT_CHECK_EQ(ch.weights[0], 1.0f);
    KT_CHECK_EQ(ch.weights[1], 1.5f);
    KT_CHECK_EQ(ch.weights[2], float(1 / 1.1));
    KT_CHECK_EQ(ch.weights[3], 1.0f);
    KT_CHECK_EQ(ch.ids[3], t.eosId());
    KT_CHECK_EQ(ch.ids[4], 0);  // everything after the first EOS is the pad id
    KT_CHECK(ch.ids == t.encodePadded("koala astronaut"));
    // Escapes and unbalanced brackets tokenize the literal text.
    KT_CHECK(koala::text::chunkPrompt(t, "\\(koala\\)").chunks[0].ids == t.encodePadded("(koala)"));
    c = koala::text::chunkPrompt(t, "(koala");
    KT_CHECK(c.chunks[0].ids == t.encodePadded("koala"));
    KT_CHECK_EQ(c.chunks[0].weights[1], 1.1f);
}
