#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTest>
#include <QToolButton>

#include "promptpanel.h"

// The request controls alone (no engine run): ranges from koala::kLimits, the seed and size checks as typed
// (ux-review 2 and 14) and the spacing control (ux-review 1).
class TestPromptPanel : public QObject {
    Q_OBJECT

private slots:
    void init();
    void cleanup();
    void rangesComeFromEngineLimits();
    void seedRefusedAsTypedNeverChanged_data();
    void seedRefusedAsTypedNeverChanged();
    void fullRangeSeedAccepted();
    void sizeValidatedAsTypedNamingBoth();
    void outOfRangeSizeStaysVisible();
    void spacingIsVisibleAndResettable();
    void compareNeedsTwoDifferentModels();
    void schedulersByReadableNames();
    void sizePickerOffersSdAndSdxlBuckets();
    void swapAndAspectLock();
    void noModelSaysWhyGenerateIsOff();
    void seedRunMustFitBesideTheSeed();

private:
    template <typename T>
    T* child(const char* name) const {
        T* widget = m_panel->findChild<T*>(QString::fromLatin1(name));
        if (!widget) qFatal("no child %s", name);
        return widget;
    }
    QLineEdit* seedEdit() const { return child<QLineEdit>("seedEdit"); }
    QLabel* problemLabel() const { return child<QLabel>("inputProblemLabel"); }
    QPushButton* generateButton() const { return child<QPushButton>("generateButton"); }
    void typeInto(QWidget* widget, const QString& text);

    std::unique_ptr<PromptPanel> m_panel;
};

void TestPromptPanel::init() {
    m_panel = std::make_unique<PromptPanel>();
    ModelEntry a;
    a.displayName = QStringLiteral("tiny-koala-700m");
    a.path = QStringLiteral("/models/a");
    ModelEntry b = a;
    b.displayName = QStringLiteral("tiny-koala-1b");
    b.path = QStringLiteral("/models/b");
    m_panel->setModels({a, b});
    m_panel->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_panel.get()));
}

void TestPromptPanel::cleanup() { m_panel.reset(); }

void TestPromptPanel::typeInto(QWidget* widget, const QString& text) {
    widget->setFocus();
    if (auto* line = qobject_cast<QLineEdit*>(widget)) {
        line->selectAll();
    } else if (auto* spin = qobject_cast<QAbstractSpinBox*>(widget)) {
        spin->selectAll();
    }
    QTest::keyClick(widget, Qt::Key_Delete);
    QTest::keyClicks(widget, text);
}

void TestPromptPanel::rangesComeFromEngineLimits() {
    const koala::Limits& L = koala::kLimits;
    QCOMPARE(child<QSpinBox>("stepsSpin")->minimum(), L.minSteps);
    QCOMPARE(child<QSpinBox>("stepsSpin")->maximum(), L.maxSteps);
    QCOMPARE(child<QDoubleSpinBox>("guidanceSpin")->minimum(), L.minGuidance);
    QCOMPARE(child<QDoubleSpinBox>("guidanceSpin")->maximum(), L.maxGuidance);
    QCOMPARE(child<QSpinBox>("countSpin")->minimum(), L.minImages);
    QCOMPARE(child<QSpinBox>("countSpin")->maximum(), GenerationParams::kMaxCount);
    QCOMPARE(child<QSpinBox>("widthSpin")->singleStep(), GenerationParams::kSizeStep);
    const GenerationParams p = m_panel->params();
    QCOMPARE(p.steps, L.defaultSteps);
    QCOMPARE(p.width, L.defaultSize);
    QVERIFY(!p.seed.has_value());
    QVERIFY(m_panel->inputProblem().isEmpty());
    QVERIFY(generateButton()->isEnabled());
}

void TestPromptPanel::seedRefusedAsTypedNeverChanged_data() {
    QTest::addColumn<QString>("typed");
    QTest::newRow("2^64") << QStringLiteral("18446744073709551616");
    QTest::newRow("20 nines") << QStringLiteral("99999999999999999999");
    QTest::newRow("negative") << QStringLiteral("-5");
    QTest::newRow("not digits") << QStringLiteral("12ab");
    QTest::newRow("fraction") << QStringLiteral("1.5");
}

// ux-review 2: a seed the engine cannot take is shown as typed, named in a message, and Generate is disabled.
void TestPromptPanel::seedRefusedAsTypedNeverChanged() {
    QFETCH(QString, typed);
    m_panel->setSeed(42);
    typeInto(seedEdit(), typed);
    QCOMPARE(seedEdit()->text(), typed);
    QVERIFY2(m_panel->inputProblem().contains(typed), qPrintable(m_panel->inputProblem()));
    // The message is beside the seed field (not repeated above the buttons), and Generate says why it is off.
    QLabel* beside = child<QLabel>("seedProblemLabel");
    QVERIFY(beside->isVisible());
    QVERIFY(beside->text().contains(QLatin1String("18446744073709551615")));
    QVERIFY(!problemLabel()->isVisible());
    QVERIFY(!generateButton()->isEnabled());
    QVERIFY2(generateButton()->toolTip().contains(typed), qPrintable(generateButton()->toolTip()));
    QVERIFY(!child<QPushButton>("compareButton")->isEnabled());

    typeInto(seedEdit(), QStringLiteral("7"));
    QVERIFY(m_panel->inputProblem().isEmpty());
    QVERIFY(!beside->isVisible());
    QVERIFY(!generateButton()->toolTip().contains(QLatin1String("Cannot")));
    QVERIFY(generateButton()->isEnabled());
    QCOMPARE(m_panel->params().seed, std::optional<quint64>(7));
}

void TestPromptPanel::fullRangeSeedAccepted() {
    m_panel->setSeed(1);
    for (const QString& typed :
         {QStringLiteral("9999999999999999999"), QStringLiteral("18446744073709551615"), QStringLiteral("0")}) {
        typeInto(seedEdit(), typed);
        QVERIFY2(m_panel->inputProblem().isEmpty(), qPrintable(m_panel->inputProblem()));
        QCOMPARE(QString::number(m_panel->params().seed.value()), typed);
    }
    // Random per image: no seed, whatever the field says.
    child<QCheckBox>("randomSeedCheck")->setChecked(true);
    QVERIFY(!m_panel->params().seed.has_value());
    m_panel->setSeed(18446744073709551615ULL);
    QCOMPARE(seedEdit()->text(), QStringLiteral("18446744073709551615"));
    QCOMPARE(m_panel->params().seed, std::optional<quint64>(18446744073709551615ULL));
}

// ux-review 14: 100 × 77 is refused while typing, naming both sides, not only at Generate.
void TestPromptPanel::sizeValidatedAsTypedNamingBoth() {
    auto* size = child<QComboBox>("sizeCombo");
    size->setCurrentIndex(size->findData(QStringLiteral("custom")));
    typeInto(child<QSpinBox>("widthSpin"), QStringLiteral("100"));
    typeInto(child<QSpinBox>("heightSpin"), QStringLiteral("77"));
    const QString problem = child<QLabel>("sizeProblemLabel")->text();
    QVERIFY(child<QLabel>("sizeProblemLabel")->isVisible());
    QVERIFY2(problem.contains(QLatin1String("100")) && problem.contains(QLatin1String("77")), qPrintable(problem));
    QVERIFY2(problem.contains(QLatin1String("Width")) && problem.contains(QLatin1String("height")),
             qPrintable(problem));
    QVERIFY(!generateButton()->isEnabled());

    typeInto(child<QSpinBox>("widthSpin"), QStringLiteral("512"));
    typeInto(child<QSpinBox>("heightSpin"), QStringLiteral("768"));
    QVERIFY2(m_panel->inputProblem().isEmpty(), qPrintable(m_panel->inputProblem()));
    QVERIFY(generateButton()->isEnabled());
    QCOMPARE(m_panel->params().width, 512);
    QCOMPARE(m_panel->params().height, 768);
}

// ux-review 14: typing 99999 showed 999 without a word.
void TestPromptPanel::outOfRangeSizeStaysVisible() {
    auto* size = child<QComboBox>("sizeCombo");
    size->setCurrentIndex(size->findData(QStringLiteral("custom")));
    typeInto(child<QSpinBox>("widthSpin"), QStringLiteral("99999"));
    QCOMPARE(child<QSpinBox>("widthSpin")->value(), 99999);
    QLabel* beside = child<QLabel>("sizeProblemLabel");
    QVERIFY2(beside->text().contains(QLatin1String("99999")), qPrintable(beside->text()));
    QVERIFY(generateButton()->toolTip().contains(QLatin1String("99999")));
    QVERIFY(!generateButton()->isEnabled());
}

// ux-review 1: a preset's spacing is shown in a control and can be set back to the model's own.
void TestPromptPanel::spacingIsVisibleAndResettable() {
    auto* spacing = child<QComboBox>("spacingCombo");
    QCOMPARE(spacing->currentData().toString(), QStringLiteral("default"));
    GenerationParams p = m_panel->params();
    p.spacing = QStringLiteral("trailing");
    m_panel->setParams(p);
    QCOMPARE(spacing->currentData().toString(), QStringLiteral("trailing"));
    QCOMPARE(m_panel->params().spacing, QStringLiteral("trailing"));
    spacing->setCurrentIndex(spacing->findData(QStringLiteral("default")));
    QCOMPARE(m_panel->params().spacing, QStringLiteral("default"));
}

// ux-review 8: restored with the same model on both sides, Compare was enabled and then failed.
void TestPromptPanel::compareNeedsTwoDifferentModels() {
    auto* compare = child<QPushButton>("compareButton");
    GenerationParams p = m_panel->params();
    p.modelPath = QStringLiteral("/models/a");
    p.modelPath2 = QStringLiteral("/models/a");
    m_panel->setParams(p);
    QCOMPARE(m_panel->compareModelPath(), m_panel->currentModelPath());
    QVERIFY(!compare->isEnabled());
    QVERIFY(compare->toolTip().contains(QLatin1String("different model")));
    QVERIFY(generateButton()->isEnabled());
    m_panel->selectModel(QStringLiteral("/models/b"), true);
    QVERIFY(compare->isEnabled());
}

// issue 13 item 4: "DPM++ 2M Karras", not "dpmpp_2m_karras"; the engine id stays the value; "model default (Euler)"
// names the loaded model's own scheduler.
void TestPromptPanel::schedulersByReadableNames() {
    auto* scheduler = child<QComboBox>("schedulerCombo");
    const int karras = scheduler->findData(QStringLiteral("dpmpp_2m_karras"));
    QVERIFY(karras >= 0);
    QCOMPARE(scheduler->itemText(karras), QStringLiteral("DPM++ 2M Karras"));
    QCOMPARE(scheduler->itemText(scheduler->findData(QStringLiteral("euler_a"))), QStringLiteral("Euler a"));
    for (int i = 0; i < scheduler->count(); ++i)
        QVERIFY2(!scheduler->itemText(i).contains(QLatin1Char('_')), qPrintable(scheduler->itemText(i)));
    scheduler->setCurrentIndex(karras);
    QCOMPARE(m_panel->params().scheduler, QStringLiteral("dpmpp_2m_karras"));

    ModelEntry euler;
    euler.displayName = QStringLiteral("tiny-koala-700m");
    euler.path = QStringLiteral("/models/a");
    euler.defaultScheduler = QStringLiteral("euler");
    ModelEntry ddim = euler;
    ddim.displayName = QStringLiteral("tiny-sd");
    ddim.path = QStringLiteral("/models/sd");
    ddim.defaultScheduler = QStringLiteral("ddim");
    m_panel->setModels({euler, ddim});
    m_panel->selectModel(QStringLiteral("/models/a"));
    const int def = scheduler->findData(QStringLiteral("default"));
    QCOMPARE(scheduler->itemText(def), QStringLiteral("model default (Euler)"));
    m_panel->selectModel(QStringLiteral("/models/sd"));
    QCOMPARE(scheduler->itemText(def), QStringLiteral("model default (DDIM)"));
}

void TestPromptPanel::sizePickerOffersSdAndSdxlBuckets() {
    auto* size = child<QComboBox>("sizeCombo");
    for (const QSize& s : GenerationParams::aspectBuckets() + GenerationParams::sdBuckets())
        QVERIFY2(size->findData(QStringLiteral("%1x%2").arg(s.width()).arg(s.height())) >= 0,
                 qPrintable(QStringLiteral("%1x%2").arg(s.width()).arg(s.height())));
    size->setCurrentIndex(size->findData(QStringLiteral("512x768")));
    QCOMPARE(m_panel->params().width, 512);
    QCOMPARE(m_panel->params().height, 768);
    // Typing a size that is a bucket selects it; any other shows "Custom…"; the arrows step by 64.
    typeInto(child<QSpinBox>("widthSpin"), QStringLiteral("768"));
    QCOMPARE(size->currentData().toString(), QStringLiteral("768x768"));
    QTest::keyClick(child<QSpinBox>("heightSpin"), Qt::Key_Up);
    QCOMPARE(m_panel->params().height, 832);
    QCOMPARE(size->currentData().toString(), QStringLiteral("custom"));
    QVERIFY(m_panel->inputProblem().isEmpty());
    QTest::keyClick(child<QSpinBox>("widthSpin"), Qt::Key_Down);
    QTest::keyClick(child<QSpinBox>("widthSpin"), Qt::Key_Down);
    QCOMPARE(m_panel->params().width, 640);
}

void TestPromptPanel::swapAndAspectLock() {
    auto* size = child<QComboBox>("sizeCombo");
    size->setCurrentIndex(size->findData(QStringLiteral("832x1216")));
    QTest::mouseClick(child<QToolButton>("swapSizeButton"), Qt::LeftButton);
    QCOMPARE(m_panel->params().width, 1216);
    QCOMPARE(m_panel->params().height, 832);
    QCOMPARE(size->currentData().toString(), QStringLiteral("1216x832"));

    size->setCurrentIndex(size->findData(QStringLiteral("768x512")));  // 3:2
    QTest::mouseClick(child<QToolButton>("aspectLockButton"), Qt::LeftButton);
    QVERIFY(m_panel->isAspectLocked());
    typeInto(child<QSpinBox>("widthSpin"), QStringLiteral("1152"));
    QCOMPARE(m_panel->params().height, 768);
    typeInto(child<QSpinBox>("heightSpin"), QStringLiteral("1024"));
    QCOMPARE(m_panel->params().width, 1536);
    QVERIFY(m_panel->inputProblem().isEmpty());
    // A picked size is taken as it is, and the lock then keeps the new ratio.
    size->setCurrentIndex(size->findData(QStringLiteral("1024x1024")));
    QCOMPARE(m_panel->params().height, 1024);
    typeInto(child<QSpinBox>("widthSpin"), QStringLiteral("640"));
    QCOMPARE(m_panel->params().height, 640);
    m_panel->setAspectLocked(false);
    typeInto(child<QSpinBox>("widthSpin"), QStringLiteral("512"));
    QCOMPARE(m_panel->params().height, 640);
}

void TestPromptPanel::noModelSaysWhyGenerateIsOff() {
    m_panel->setModels({});
    QVERIFY(!generateButton()->isEnabled());
    QVERIFY(!m_panel->generateBlockedReason().isEmpty());
    QVERIFY2(generateButton()->toolTip().contains(QLatin1String("model")), qPrintable(generateButton()->toolTip()));
}

// A fixed seed near 2^64-1 with several images: the seeds would pass the end (koala::seedRunFits); said beside the seed.
void TestPromptPanel::seedRunMustFitBesideTheSeed() {
    m_panel->setSeed(18446744073709551614ULL);
    child<QSpinBox>("countSpin")->setValue(2);
    QVERIFY(m_panel->inputProblem().isEmpty());
    child<QSpinBox>("countSpin")->setValue(3);
    QLabel* beside = child<QLabel>("seedProblemLabel");
    QVERIFY(beside->isVisible());
    QVERIFY2(beside->text().contains(QLatin1String("3 images")), qPrintable(beside->text()));
    QVERIFY(!generateButton()->isEnabled());
    QVERIFY(!problemLabel()->isVisible());
    child<QSpinBox>("countSpin")->setValue(1);
    QVERIFY(!beside->isVisible());
    QVERIFY(generateButton()->isEnabled());
}

QTEST_MAIN(TestPromptPanel)
#include "tst_promptpanel.moc"
