// The prompt syntax's public face (issue 10): its names and the prompt editors' token/chunk layout.
#include "pipeline/boundary.h"

#include "text/prompt_syntax.h"
#include "text/tokenizer.h"

#include <cctype>
#include <string>

namespace koala {

const char* toString(PromptSyntax v) { return v == PromptSyntax::Plain ? "plain" : "a1111"; }

bool fromString(std::string_view s, PromptSyntax& out) {
    std::string l;
    for (char c : s) l += char(std::tolower(static_cast<unsigned char>(c)));
    if (l == "a1111" || l == "automatic1111" || l == "webui") {
        out = PromptSyntax::A1111;
        return true;
    }
    if (l == "plain" || l == "diffusers" || l == "literal") {
        out = PromptSyntax::Plain;
        return true;
    }
    return false;
}

// Shared by PromptTokenizer::layout (model.cpp holds the tokenizer).
PromptTokenizer::Layout promptLayout(const text::ClipTokenizer& tok, const std::string& textIn, PromptSyntax syntax) {
    PromptTokenizer::Layout l;
    if (syntax == PromptSyntax::Plain) {
        l.tokens = int(tok.encode(textIn).size());
        return l;
    }
    // Tags removed, then the chunk offsets mapped back to the text as given.
    std::vector<text::LoraTag> tags;
    const std::string stripped = text::extractLoraTags(textIn, &tags);
    const text::ChunkedPrompt c = text::chunkPrompt(tok, stripped, true);
    l.tokens = c.tokenCount;
    l.chunks = int(c.chunks.size());
    l.chunkStarts.clear();
    for (std::size_t off : c.chunkStarts) {
        std::size_t orig = off;
        for (const auto& t : tags)
            if (t.begin <= orig) orig += t.end - t.begin;
        l.chunkStarts.push_back(std::min(orig, textIn.size()));
    }
    return l;
}

}  // namespace koala
