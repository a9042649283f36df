#include <algorithm>

#include <QDoubleSpinBox>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSlider>
#include <QTemporaryDir>
#include <QTest>
#include <QtEndian>

#include "GenerationParams.h"
#include "PresetStore.h"
#include "lorapanel.h"
#include "prompteditor.h"
#include "promptpanel.h"
#include "uitestutil.h"

// The LoRA panel (issue 10) on the fixture LoRA files: listing, trigger words from the file's metadata, the weight
// slider editing the <lora:NAME:W> tag of the prompt, and the coverage report.
class TestLoraPanel : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void tagText_data();
    void tagText();
    void listsTheFolder();
    void triggerWordsFromMetadata();
    void weightEditsTheTag();
    void report();
    void pngMetadataRestoresTags();
    void promptSyntaxRoundTrips();
    void inTheMainWindow();

private:
    QTemporaryDir m_dir;
};

namespace {
const QString kFixtures = QStringLiteral(KOALA_TEST_DATA "/fixtures/lora");

// A copy of a safetensors file with `metadata` as its __metadata__ (the tensors' offsets are relative to the data,
// so a new header keeps them).
bool copyWithMetadata(const QString& from, const QString& to, const QJsonObject& metadata) {
    QFile in(from);
    if (!in.open(QIODevice::ReadOnly)) return false;
    const QByteArray bytes = in.readAll();
    const quint64 headerSize = qFromLittleEndian<quint64>(bytes.constData());
    QJsonObject header = QJsonDocument::fromJson(bytes.mid(8, qsizetype(headerSize))).object();
    header[QStringLiteral("__metadata__")] = metadata;
    const QByteArray json = QJsonDocument(header).toJson(QJsonDocument::Compact);
    QByteArray size(8, '\0');
    qToLittleEndian<quint64>(quint64(json.size()), size.data());
    QFile out(to);
    if (!out.open(QIODevice::WriteOnly)) return false;
    out.write(size + json + bytes.mid(8 + qsizetype(headerSize)));
    return true;
}
}  // namespace

void TestLoraPanel::initTestCase() {
    QVERIFY(m_dir.isValid());
    QVERIFY(QFile::copy(kFixtures + QStringLiteral("/peft_lora.safetensors"), m_dir.filePath("peft_lora.safetensors")));
    QVERIFY(copyWithMetadata(kFixtures + QStringLiteral("/kohya_lora.safetensors"),
                             m_dir.filePath("koala_style.safetensors"),
                             {{QStringLiteral("modelspec.trigger_phrase"), QStringLiteral("kstyle, watercolor")}}));
}

void TestLoraPanel::tagText_data() {
    QTest::addColumn<QString>("prompt");
    QTest::addColumn<double>("weight");
    QTest::addColumn<QString>("with");
    QTest::addColumn<QString>("without");
    QTest::newRow("empty") << QString() << 1.0 << QStringLiteral("<lora:style:1>") << QString();
    QTest::newRow("appended") << QStringLiteral("a koala ") << 0.8 << QStringLiteral("a koala <lora:style:0.8>")
                              << QStringLiteral("a koala ");
    QTest::newRow("edited in place") << QStringLiteral("a <lora:style:0.5> koala") << 0.75
                                     << QStringLiteral("a <lora:style:0.75> koala") << QStringLiteral("a koala");
    QTest::newRow("no weight") << QStringLiteral("a koala <lora:style>") << -0.5
                               << QStringLiteral("a koala <lora:style:-0.5>") << QStringLiteral("a koala");
    QTest::newRow("other tags kept") << QStringLiteral("<lora:styles:0.3> a <lora:style:2:0.5>") << 1.25
                                     << QStringLiteral("<lora:styles:0.3> a <lora:style:1.25:0.5>")
                                     << QStringLiteral("<lora:styles:0.3> a");
}

void TestLoraPanel::tagText() {
    QFETCH(QString, prompt);
    QFETCH(double, weight);
    QFETCH(QString, with);
    QFETCH(QString, without);
    const QString name = QStringLiteral("style");
    QCOMPARE(LoraPanel::withTag(prompt, name, weight), with);
    QCOMPARE(LoraPanel::withoutTag(with, name), without.trimmed());
    QVERIFY(LoraPanel::tagWeight(with, name).has_value());
    QCOMPARE(*LoraPanel::tagWeight(with, name), weight);
    QVERIFY(!LoraPanel::tagWeight(without, name).has_value());
}

void TestLoraPanel::listsTheFolder() {
    LoraPanel panel;
    panel.setFolders({m_dir.path()});
    QCOMPARE(panel.loraNames(), (QStringList{QStringLiteral("koala_style"), QStringLiteral("peft_lora")}));
    QCOMPARE(panel.currentName(), QStringLiteral("koala_style"));
    auto* list = panel.findChild<QListWidget*>(QStringLiteral("loraList"));
    QVERIFY(list->item(0)->toolTip().contains(QStringLiteral("kohya")));
    QVERIFY(list->item(1)->toolTip().contains(QStringLiteral("peft")));
    // A folder without LoRAs says so.
    QTemporaryDir empty;
    panel.setFolders({empty.path()});
    QCOMPARE(panel.loraCount(), 0);
    QVERIFY(panel.currentName().isEmpty());
    // Without a prompt editor the buttons do nothing.
    panel.setFolders({m_dir.path()});
    QVERIFY(!panel.findChild<QPushButton*>(QStringLiteral("loraTagButton"))->isEnabled());
}

void TestLoraPanel::triggerWordsFromMetadata() {
    LoraPanel panel;
    panel.setFolders({m_dir.path()});
    PromptEditor prompt(QStringLiteral("Prompt"), {});
    panel.setPromptEditor(&prompt);
    QVERIFY(panel.selectLora(QStringLiteral("koala_style")));
    QCOMPARE(panel.currentTriggerWords(), (QStringList{QStringLiteral("kstyle"), QStringLiteral("watercolor")}));
    prompt.setText(QStringLiteral("a koala, watercolor"));
    panel.insertTriggerWords();
    QCOMPARE(prompt.text(), QStringLiteral("a koala, watercolor, kstyle"));
    QVERIFY(panel.selectLora(QStringLiteral("peft_lora")));
    QVERIFY(panel.currentTriggerWords().isEmpty());
}

void TestLoraPanel::weightEditsTheTag() {
    LoraPanel panel;
    panel.setFolders({m_dir.path()});
    PromptEditor prompt(QStringLiteral("Prompt"), {});
    panel.setPromptEditor(&prompt);
    prompt.setText(QStringLiteral("a koala"));
    QVERIFY(panel.selectLora(QStringLiteral("peft_lora")));
    auto* button = panel.findChild<QPushButton*>(QStringLiteral("loraTagButton"));
    auto* slider = panel.findChild<QSlider*>(QStringLiteral("loraWeightSlider"));
    auto* spin = panel.findChild<QDoubleSpinBox*>(QStringLiteral("loraWeight"));
    QVERIFY(button->isEnabled());
    // Not in the prompt: the slider only sets the weight to add with.
    slider->setValue(16);  // 0.8
    QCOMPARE(prompt.text(), QStringLiteral("a koala"));
    QCOMPARE(spin->value(), 0.8);
    button->click();
    QCOMPARE(prompt.text(), QStringLiteral("a koala <lora:peft_lora:0.8>"));
    QVERIFY(button->text().contains(QStringLiteral("Remove")));
    // In the prompt: the slider and the spin box edit the tag.
    slider->setValue(10);
    QCOMPARE(prompt.text(), QStringLiteral("a koala <lora:peft_lora:0.5>"));
    spin->setValue(1.25);
    QCOMPARE(prompt.text(), QStringLiteral("a koala <lora:peft_lora:1.25>"));
    QCOMPARE(slider->value(), 25);
    // A tag typed (or restored from a PNG) sets the weight shown.
    prompt.setText(QStringLiteral("<lora:peft_lora:0.3> a koala"));
    QCOMPARE(spin->value(), 0.3);
    QCOMPARE(slider->value(), 6);
    button->click();
    QCOMPARE(prompt.text(), QStringLiteral("a koala"));
    QVERIFY(button->text().contains(QStringLiteral("Add")));
    // Ctrl+Up in the editor on the tag steps it by 0.05, as AUTOMATIC1111 does.
    prompt.setText(QStringLiteral("a koala <lora:peft_lora:0.8>"));
    QTextCursor cursor = prompt.editor()->textCursor();
    cursor.setPosition(int(prompt.text().indexOf(QStringLiteral("peft"))));
    prompt.editor()->setTextCursor(cursor);
    QTest::keyClick(prompt.editor(), Qt::Key_Up, Qt::ControlModifier);
    QCOMPARE(prompt.text(), QStringLiteral("a koala <lora:peft_lora:0.85>"));
    QCOMPARE(spin->value(), 0.85);
}

void TestLoraPanel::report() {
    LoraPanel panel;
    auto* label = panel.findChild<QLabel*>(QStringLiteral("loraReport"));
    QVERIFY(label->isHidden());
    panel.setReport({QStringLiteral("peft_lora 0.8: applied 12 of 14 keys (2 without a target)")});
    QVERIFY(!label->isHidden());
    QVERIFY(panel.reportText().contains(QStringLiteral("applied 12 of 14 keys (2 without a target)")));
    panel.setReport({});
    QVERIFY(label->isHidden());
}

// A PNG records the LoRAs an image used (A1111 "Lora hashes" and the koala chunk); reading it back ("reuse
// parameters") gives the prompt with its tags, which the panel reads its weight from.
void TestLoraPanel::pngMetadataRestoresTags() {
    GenerationParams p = GenerationParams::defaults();
    p.prompt = QStringLiteral("a koala <lora:peft_lora:0.7>");
    koala::GenerateResult::AppliedLora applied;
    applied.name = "peft_lora";
    applied.weight = 0.7;
    applied.shortHash = "0123456789ab";
    applied.fromPrompt = true;
    applied.appliedKeys = 12;
    applied.totalKeys = 14;
    applied.missingKeys = 2;
    applied.report = "applied 12 of 14 keys (2 without a target)";
    p.setAppliedLoras({applied});
    QCOMPARE(p.loraReportLines(),
             QStringList{QStringLiteral("peft_lora 0.7: applied 12 of 14 keys (2 without a target)")});
    QVERIFY(p.toA1111().contains(QStringLiteral("Lora hashes: \"peft_lora: 0123456789ab\"")));

    for (const bool a1111Only : {false, true}) {
        auto chunks = koala::metadataTextChunks(p.toMetadata());
        if (a1111Only)
            chunks.erase(std::remove_if(chunks.begin(), chunks.end(), [](const auto& c) { return c.first == "koala"; }),
                         chunks.end());
        const koala::MetadataReadResult read = koala::interpretMetadata(chunks);
        const GenerationParams back = GenerationParams::fromMetadata(read.metadata);
        QCOMPARE(back.prompt, p.prompt);
        QCOMPARE(back.loras.size(), 1);
        QCOMPARE(back.loras.at(0).name, QStringLiteral("peft_lora"));
        QCOMPARE(back.loras.at(0).hash, QStringLiteral("0123456789ab"));
        QCOMPARE(back.loras.at(0).weight, 0.7);

        LoraPanel panel;
        panel.setFolders({m_dir.path()});
        PromptEditor prompt(QStringLiteral("Prompt"), {});
        panel.setPromptEditor(&prompt);
        QVERIFY(panel.selectLora(QStringLiteral("peft_lora")));
        prompt.setText(back.prompt);
        QCOMPARE(panel.weight(), 0.7);
    }
    // The gallery's JSON keeps the report.
    QCOMPARE(GenerationParams::fromJson(p.toJson()), p);
}

void TestLoraPanel::promptSyntaxRoundTrips() {
    GenerationParams p = GenerationParams::defaults();
    QCOMPARE(p.promptSyntax, QStringLiteral("a1111"));
    QCOMPARE(p.toRequest(1).promptSyntax, koala::PromptSyntax::A1111);
    p.promptSyntax = QStringLiteral("plain");
    QVERIFY(p.validate().isEmpty());
    QCOMPARE(p.toRequest(1).promptSyntax, koala::PromptSyntax::Plain);
    QCOMPARE(GenerationParams::fromJson(p.toJson()).promptSyntax, QStringLiteral("plain"));
    QCOMPARE(GenerationParams::fromMetadata(p.toMetadata()).promptSyntax, QStringLiteral("plain"));
    p.promptSyntax = QStringLiteral("comfy");
    QVERIFY(p.validate().contains(QStringLiteral("comfy")));

    // Presets: prompt_syntax is read, checked, written and applied.
    QString error;
    const std::optional<Preset> preset =
        Preset::fromYaml(QStringLiteral("name: Plain\nprompt_syntax: plain\n"), QStringLiteral("plain.yaml"), &error);
    QVERIFY2(preset, qPrintable(error));
    QCOMPARE(preset->promptSyntax.value_or(QString()), QStringLiteral("plain"));
    QCOMPARE(preset->applyTo(GenerationParams::defaults()).promptSyntax, QStringLiteral("plain"));
    QVERIFY(preset->toYaml().contains(QStringLiteral("prompt_syntax: plain")));
    QVERIFY(!Preset::fromYaml(QStringLiteral("name: X\nprompt_syntax: comfy\n"), QStringLiteral("x.yaml"), &error));
    QVERIFY(error.contains(QStringLiteral("x.yaml:2")));
    GenerationParams plain = GenerationParams::defaults();
    plain.promptSyntax = QStringLiteral("plain");
    QCOMPARE(Preset::fromParams(QStringLiteral("P"), {}, plain).promptSyntax.value_or(QString()),
             QStringLiteral("plain"));
    QVERIFY(!Preset::fromParams(QStringLiteral("A"), {}, GenerationParams::defaults()).promptSyntax);
}

// The LoRA tab of the window, the exact chunk layout of the selected model, and a PNG whose parameters bring back
// the plain syntax and a LoRA tag.
void TestLoraPanel::inTheMainWindow() {
    IsolatedWindowFiles files;
    QVERIFY(files.dir.isValid());
    MainWindow::Options options = files.options({fixtureModel("tiny-koala-700m")});
    {
        AppSettings settings(options.settingsFile);
        settings.setLoraFolders({m_dir.path()});
        settings.sync();
    }
    MainWindow window(options);
    auto* panel = window.findChild<LoraPanel*>(QStringLiteral("loraPanel"));
    QVERIFY(panel);
    QCOMPARE(panel->loraCount(), 2);

    PromptEditor* prompt = window.promptPanel()->promptEditor();
    QStringList koalas;
    for (int i = 0; i < 80; ++i) koalas << QStringLiteral("koala");
    prompt->setText(koalas.join(QLatin1Char(' ')));
    QCOMPARE(prompt->syntax(), QStringLiteral("a1111"));
    QCOMPARE(prompt->counterText(), QStringLiteral("80 tokens \u00b7 2 chunks"));
    QCOMPARE(prompt->layout().chunkStarts, (QList<int>{0, 75 * 6}));

    GenerationParams params = window.promptPanel()->params();
    params.prompt = QStringLiteral("a koala <lora:peft_lora:0.6>");
    params.promptSyntax = QStringLiteral("plain");
    const QString png = files.dir.filePath(QStringLiteral("plain.png"));
    koala::Image image;
    image.width = image.height = 8;
    image.rgb.assign(8 * 8 * 3, 128);
    koala::writePng(png.toStdString(), image, koala::metadataTextChunks(params.toMetadata()));
    QVERIFY(window.loadParametersFromPng(png));
    QCOMPARE(prompt->text(), params.prompt);
    QCOMPARE(prompt->syntax(), QStringLiteral("plain"));
    QCOMPARE(window.promptPanel()->params().promptSyntax, QStringLiteral("plain"));
    QVERIFY(panel->selectLora(QStringLiteral("peft_lora")));
    QCOMPARE(panel->weight(), 0.6);
}

QTEST_MAIN(TestLoraPanel)
#include "tst_lorapanel.moc"
