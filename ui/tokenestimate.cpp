#include "tokenestimate.h"

#include <QRegularExpression>

int TokenEstimate::count(const QString& text) {
    // The same alternatives as CLIP's pre-tokenizer regex (contractions, letter runs, single digits, other runs).
    static const QRegularExpression pieces(
        QStringLiteral(R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+)"),
        QRegularExpression::CaseInsensitiveOption);
    int tokens = 0;
    auto it = pieces.globalMatch(text.toLower());
    while (it.hasNext()) {
        const QString piece = it.next().captured();
        if (piece.front().isLetter())
            tokens += (piece.size() <= 10) ? 1 : int((piece.size() + 5) / 6);
        else if (piece.front().isDigit() || piece.startsWith(QLatin1Char('<')) || piece.startsWith(QLatin1Char('\'')))
            tokens += 1;
        else
            tokens += int((piece.size() + 1) / 2);
    }
    return tokens;
}
