#pragma once

#include <QString>

// An ESTIMATE of the CLIP token count of a prompt (start/end markers not included), used only while app/ offers no
// exact count: it follows CLIP's pre-tokenizer split (letters runs, single digits, punctuation runs) and assumes
// common words are one BPE token and words over 10 letters split every ~6 letters. The prompt editor marks it with "≈".
namespace TokenEstimate {
int count(const QString& text);
}
