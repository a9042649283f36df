#include <QtTest>

#include "PresetStore.h"

class TestPresetStore : public QObject {
    Q_OBJECT

private slots:
    void shippedPresetsAllParse();
    void shippedPresetsFoundFromSourceTree();
    void saveAndReloadRoundTrip();
    void malformedFileNamesFileAndLine();
    void invalidValueNamesLine();
    void noOverwriteWithoutAsking();
    void shippedPresetsAreReadOnly();
    void renameAndDelete();
    void importAndExport();
    void applyOnlyTouchesSetFields();
    void seedsFullRangeAndRandom();
    void rangesComeFromEngineLimits();

private:
    static void writeFile(const QString& path, const QByteArray& data);
};

void TestPresetStore::writeFile(const QString& path, const QByteArray& data) {
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(data);
}

void TestPresetStore::shippedPresetsAllParse() {
    QTemporaryDir user;
    PresetStore store(user.path(), QStringLiteral(KOALA_SHIPPED_PRESETS));
    QVERIFY2(store.errors().isEmpty(), qPrintable(store.errors().join('\n')));
    const QStringList files = QDir(QStringLiteral(KOALA_SHIPPED_PRESETS)).entryList({QStringLiteral("*.yaml")});
    QCOMPARE(files.size(), 7);
    QCOMPARE(store.presets().size(), files.size());
    for (const Preset& p : store.presets()) {
        QVERIFY(p.readOnly);
        QVERIFY(!p.name.isEmpty());
        QVERIFY(!p.description.isEmpty());
        const GenerationParams applied = p.applyTo(GenerationParams::defaults());
        QVERIFY2(applied.validate().isEmpty(), qPrintable(p.name + ": " + applied.validate()));
    }
    const std::optional<Preset> lightning = store.find(QStringLiteral("KOALA-Lightning 10 steps"));
    QVERIFY(lightning);
    QCOMPARE(*lightning->scheduler, QStringLiteral("euler"));
    QCOMPARE(*lightning->spacing, QStringLiteral("trailing"));
    QCOMPARE(*lightning->steps, 10);
    QCOMPARE(*lightning->guidance, 3.5);
    const std::optional<Preset> portrait = store.find(QStringLiteral("portrait"));  // names match case-insensitively
    QVERIFY(portrait);
    QCOMPARE(*portrait->width, 832);
    QCOMPARE(*portrait->height, 1216);
    QVERIFY(!portrait->steps.has_value());
    const std::optional<Preset> landscape = store.find(QStringLiteral("Landscape"));
    QVERIFY(landscape);
    QCOMPARE(*landscape->width, 1216);
    QCOMPARE(*landscape->height, 832);
    QVERIFY(store.find(QStringLiteral("KOALA-700M fast")));
    QVERIFY(store.find(QStringLiteral("KOALA-1B quality")));
    // Issue 11: SD 2.1 at its own 768² (v-prediction from the model's scheduler config), guidance 7.5, 25 steps.
    for (const char* name : {"SD 2.1 768", "SD 2.1 768 Euler"}) {
        const std::optional<Preset> sd = store.find(QLatin1String(name));
        QVERIFY2(sd, name);
        QCOMPARE(*sd->width, 768);
        QCOMPARE(*sd->height, 768);
        QCOMPARE(*sd->steps, 25);
        QCOMPARE(*sd->guidance, 7.5);
        QCOMPARE(sd->modelHint, QStringLiteral("stable-diffusion-2-1"));
    }
    QCOMPARE(*store.find(QStringLiteral("SD 2.1 768"))->scheduler, QStringLiteral("dpmpp_2m_karras"));
    QCOMPARE(*store.find(QStringLiteral("SD 2.1 768 Euler"))->scheduler, QStringLiteral("euler"));
}

void TestPresetStore::shippedPresetsFoundFromSourceTree() {
    // A development build finds presets/ of the source tree without any configuration.
    const QString dir = PresetStore::shippedPresetsDir();
    QVERIFY(!dir.isEmpty());
    QVERIFY(QFileInfo::exists(dir + QStringLiteral("/portrait.yaml")));
}

void TestPresetStore::saveAndReloadRoundTrip() {
    QTemporaryDir user;
    QTemporaryDir shipped;
    PresetStore store(user.path(), shipped.path());
    QSignalSpy changed(&store, &PresetStore::presetsChanged);

    GenerationParams params = GenerationParams::defaults();
    params.scheduler = QStringLiteral("dpmpp_2m");
    params.spacing = QStringLiteral("linspace");
    params.steps = 17;
    params.guidance = 4.25;
    params.guidanceRescale = 0.3;
    params.width = 1152;
    params.height = 896;
    params.hasNegative = true;
    params.negativePrompt = QStringLiteral("text: \"quoted\", watermark # not a comment");
    const Preset preset = Preset::fromParams(QStringLiteral("My Preset: ünïcode"), QStringLiteral("desc"), params,
                                             QStringLiteral("koala-1b"));
    QString error;
    QCOMPARE(store.save(preset, false, &error), PresetStore::Status::Ok);
    QVERIFY(changed.count() >= 1);

    PresetStore again(user.path(), shipped.path());  // a fresh instance reads the files back
    QVERIFY(again.errors().isEmpty());
    QCOMPARE(again.presets().size(), 1);
    const Preset back = again.presets().first();
    QCOMPARE(back.name, preset.name);
    QCOMPARE(back.description, QStringLiteral("desc"));
    QCOMPARE(back.modelHint, QStringLiteral("koala-1b"));
    QVERIFY(!back.readOnly);
    QVERIFY(back.applyTo(GenerationParams::defaults()) == preset.applyTo(GenerationParams::defaults()));
    QCOMPARE(*back.negativePrompt, params.negativePrompt);
}

void TestPresetStore::malformedFileNamesFileAndLine() {
    QTemporaryDir user;
    QTemporaryDir shipped;
    writeFile(user.filePath(QStringLiteral("good.yaml")), "name: Good\nsteps: 12\n");
    writeFile(user.filePath(QStringLiteral("broken.yaml")), "name: Broken\nsteps: 12\nwidth: [1024\nheight: 5\n");
    writeFile(user.filePath(QStringLiteral("also-good.yaml")), "name: Also good\nguidance: 2\n");
    PresetStore store(user.path(), shipped.path());
    QCOMPARE(store.presets().size(), 2);
    QVERIFY(store.find(QStringLiteral("Good")));
    QVERIFY(store.find(QStringLiteral("Also good")));
    QCOMPARE(store.errors().size(), 1);
    const QString err = store.errors().first();
    QVERIFY2(err.contains(QLatin1String("broken.yaml:")), qPrintable(err));
    // The message is "file:line: message" with a 1-based line inside the file.
    static const QRegularExpression re(QStringLiteral("broken\\.yaml:([0-9]+): .+"));
    const QRegularExpressionMatch m = re.match(err);
    QVERIFY2(m.hasMatch(), qPrintable(err));
    const int line = m.captured(1).toInt();
    QVERIFY2(line >= 3 && line <= 5, qPrintable(err));
}

void TestPresetStore::invalidValueNamesLine() {
    QString error;
    QVERIFY(!Preset::fromYaml(QStringLiteral("name: X\n\nsteps: many\n"), QStringLiteral("x.yaml"), &error));
    QVERIFY2(error.startsWith(QLatin1String("x.yaml:3: ")), qPrintable(error));
    QVERIFY(error.contains(QLatin1String("steps")));
    QVERIFY(!Preset::fromYaml(QStringLiteral("name: X\nscheduler: lms\n"), QStringLiteral("x.yaml"), &error));
    QVERIFY2(error.startsWith(QLatin1String("x.yaml:2: ")), qPrintable(error));
    QVERIFY(!Preset::fromYaml(QStringLiteral("name: X\nwidth: 1001\n"), QStringLiteral("x.yaml"), &error));
    QVERIFY2(error.startsWith(QLatin1String("x.yaml:2: ")), qPrintable(error));
    QVERIFY(!Preset::fromYaml(QStringLiteral("name: X\nstpes: 3\n"), QStringLiteral("x.yaml"), &error));
    QVERIFY2(error.contains(QLatin1String("stpes")), qPrintable(error));
    QVERIFY(!Preset::fromYaml(QStringLiteral("- a\n- b\n"), QStringLiteral("x.yaml"), &error));
    // A preset without a name takes the file name.
    const std::optional<Preset> unnamed =
        Preset::fromYaml(QStringLiteral("steps: 3\n"), QStringLiteral("/a/b/quick.yaml"));
    QVERIFY(unnamed);
    QCOMPARE(unnamed->name, QStringLiteral("quick"));
}

void TestPresetStore::noOverwriteWithoutAsking() {
    QTemporaryDir user;
    QTemporaryDir shipped;
    PresetStore store(user.path(), shipped.path());
    Preset p;
    p.name = QStringLiteral("Mine");
    p.steps = 10;
    QCOMPARE(store.save(p), PresetStore::Status::Ok);
    p.steps = 20;
    QString error;
    QCOMPARE(store.save(p, false, &error), PresetStore::Status::NameClash);
    QVERIFY(error.contains(QLatin1String("Mine")));
    QCOMPARE(*store.find(QStringLiteral("Mine"))->steps, 10);
    p.name = QStringLiteral("mine");  // a clash is case-insensitive
    QCOMPARE(store.save(p), PresetStore::Status::NameClash);
    QCOMPARE(store.save(p, true), PresetStore::Status::Ok);
    QCOMPARE(store.presets().size(), 1);
    QCOMPARE(*store.find(QStringLiteral("Mine"))->steps, 20);
    QCOMPARE(QDir(user.path()).entryList(QDir::Files).size(), 1);
    p.name = QStringLiteral("  ");
    QCOMPARE(store.save(p), PresetStore::Status::Invalid);
}

void TestPresetStore::shippedPresetsAreReadOnly() {
    QTemporaryDir user;
    PresetStore store(user.path(), QStringLiteral(KOALA_SHIPPED_PRESETS));
    const int count = store.presets().size();
    Preset p;
    p.name = QStringLiteral("Portrait");
    p.width = 64;
    QCOMPARE(store.save(p, true), PresetStore::Status::ReadOnly);
    QCOMPARE(store.remove(QStringLiteral("Portrait")), PresetStore::Status::ReadOnly);
    QCOMPARE(store.rename(QStringLiteral("Portrait"), QStringLiteral("Tall")), PresetStore::Status::ReadOnly);
    QCOMPARE(store.presets().size(), count);
    QCOMPARE(*store.find(QStringLiteral("Portrait"))->width, 832);
    QVERIFY(QDir(user.path()).entryList(QDir::Files).isEmpty());
}

void TestPresetStore::renameAndDelete() {
    QTemporaryDir user;
    QTemporaryDir shipped;
    PresetStore store(user.path(), shipped.path());
    Preset a;
    a.name = QStringLiteral("Alpha");
    a.steps = 5;
    Preset b;
    b.name = QStringLiteral("Beta");
    b.steps = 6;
    QCOMPARE(store.save(a), PresetStore::Status::Ok);
    QCOMPARE(store.save(b), PresetStore::Status::Ok);

    QCOMPARE(store.rename(QStringLiteral("Alpha"), QStringLiteral("Beta")), PresetStore::Status::NameClash);
    QCOMPARE(store.rename(QStringLiteral("Nope"), QStringLiteral("X")), PresetStore::Status::NotFound);
    QCOMPARE(store.rename(QStringLiteral("Alpha"), QStringLiteral("Gamma")), PresetStore::Status::Ok);
    QVERIFY(!store.find(QStringLiteral("Alpha")));
    QCOMPARE(*store.find(QStringLiteral("Gamma"))->steps, 5);
    QCOMPARE(QDir(user.path()).entryList(QDir::Files).size(), 2);  // the old file is gone

    PresetStore reloaded(user.path(), shipped.path());
    QVERIFY(reloaded.find(QStringLiteral("Gamma")));
    QVERIFY(!reloaded.find(QStringLiteral("Alpha")));

    QCOMPARE(store.remove(QStringLiteral("Gamma")), PresetStore::Status::Ok);
    QCOMPARE(store.remove(QStringLiteral("Gamma")), PresetStore::Status::NotFound);
    QCOMPARE(store.presets().size(), 1);
    QCOMPARE(QDir(user.path()).entryList(QDir::Files).size(), 1);
}

void TestPresetStore::importAndExport() {
    QTemporaryDir user;
    QTemporaryDir shipped;
    QTemporaryDir outside;
    PresetStore store(user.path(), shipped.path());

    const QString good = outside.filePath(QStringLiteral("shared.yaml"));
    writeFile(good, "# from a friend\nname: Shared\nsteps: 8\nspacing: trailing\n");
    QCOMPARE(store.importFile(good), PresetStore::Status::Ok);
    QCOMPARE(*store.find(QStringLiteral("Shared"))->steps, 8);
    QVERIFY(QFile::exists(good));  // a copy, not a move

    writeFile(good, "name: Shared\nsteps: 9\n");
    QCOMPARE(store.importFile(good), PresetStore::Status::NameClash);
    QCOMPARE(*store.find(QStringLiteral("Shared"))->steps, 8);
    QCOMPARE(store.importFile(good, true), PresetStore::Status::Ok);
    QCOMPARE(*store.find(QStringLiteral("Shared"))->steps, 9);
    QCOMPARE(QDir(user.path()).entryList(QDir::Files).size(), 1);

    const QString bad = outside.filePath(QStringLiteral("bad.yaml"));
    writeFile(bad, "name: Bad\nsteps: : :\n");
    QString error;
    QCOMPARE(store.importFile(bad, false, &error), PresetStore::Status::Invalid);
    QVERIFY2(error.contains(QLatin1String("bad.yaml:")), qPrintable(error));
    QVERIFY(!store.find(QStringLiteral("Bad")));
    QCOMPARE(store.importFile(outside.filePath(QStringLiteral("missing.yaml"))), PresetStore::Status::IoError);

    const QString exported = outside.filePath(QStringLiteral("out/exported.yaml"));
    QCOMPARE(store.exportPreset(QStringLiteral("Shared"), exported), PresetStore::Status::Ok);
    QString parseError;
    const std::optional<Preset> back = Preset::fromFile(exported, &parseError);
    QVERIFY2(back, qPrintable(parseError));
    QCOMPARE(back->name, QStringLiteral("Shared"));
    QCOMPARE(*back->steps, 9);
    QCOMPARE(store.exportPreset(QStringLiteral("Nope"), exported), PresetStore::Status::NotFound);
}

void TestPresetStore::applyOnlyTouchesSetFields() {
    GenerationParams base = GenerationParams::defaults();
    base.prompt = QStringLiteral("keep me");
    base.modelPath = QStringLiteral("/keep/model");
    base.steps = 33;
    Preset p;
    p.name = QStringLiteral("sizes");
    p.width = 640;
    p.height = 1536;
    const GenerationParams applied = p.applyTo(base);
    QCOMPARE(applied.prompt, base.prompt);
    QCOMPARE(applied.modelPath, base.modelPath);
    QCOMPARE(applied.steps, 33);
    QCOMPARE(applied.width, 640);
    QCOMPARE(applied.height, 1536);
}

// A preset's seed is "random" (or -1, as older files say) or any uint64, never another number.
void TestPresetStore::seedsFullRangeAndRandom() {
    QString error;
    std::optional<Preset> p =
        Preset::fromYaml(QStringLiteral("name: X\nseed: 18446744073709551615\n"), QStringLiteral("x.yaml"), &error);
    QVERIFY2(p, qPrintable(error));
    QCOMPARE(*p->seed, std::optional<quint64>(18446744073709551615ULL));
    std::optional<Preset> back = Preset::fromYaml(p->toYaml(), QStringLiteral("back.yaml"), &error);
    QVERIFY2(back, qPrintable(error));
    QCOMPARE(*back->seed, std::optional<quint64>(18446744073709551615ULL));
    QCOMPARE(back->applyTo(GenerationParams::defaults()).seed, std::optional<quint64>(18446744073709551615ULL));

    for (const char* random : {"random", "-1"}) {
        p = Preset::fromYaml(QStringLiteral("name: X\nseed: %1\n").arg(QLatin1String(random)), QStringLiteral("x.yaml"),
                             &error);
        QVERIFY2(p, qPrintable(error));
        QVERIFY(p->seed.has_value() && !p->seed->has_value());
        GenerationParams fixed = GenerationParams::defaults();
        fixed.seed = 5;
        QVERIFY(!p->applyTo(fixed).seed.has_value());
        QVERIFY(p->toYaml().contains(QLatin1String("seed: random")));
    }
    for (const char* bad : {"18446744073709551616", "-2", "12x", "1.5"}) {
        QVERIFY2(!Preset::fromYaml(QStringLiteral("name: X\n\nseed: %1\n").arg(QLatin1String(bad)),
                                   QStringLiteral("x.yaml"), &error),
                 bad);
        QVERIFY2(error.startsWith(QLatin1String("x.yaml:3: ")) && error.contains(QLatin1String(bad)),
                 qPrintable(error));
    }
}

void TestPresetStore::rangesComeFromEngineLimits() {
    const koala::Limits& L = koala::kLimits;
    QString error;
    auto parses = [&error](const QString& line) {
        return Preset::fromYaml(QStringLiteral("name: X\n") + line + QLatin1Char('\n'), QStringLiteral("x.yaml"),
                                &error)
            .has_value();
    };
    QVERIFY(parses(QStringLiteral("steps: %1").arg(L.maxSteps)));
    QVERIFY(!parses(QStringLiteral("steps: %1").arg(L.maxSteps + 1)));
    QVERIFY(error.contains(QString::number(L.maxSteps)));
    QVERIFY(parses(QStringLiteral("guidance: %1").arg(L.maxGuidance)));
    QVERIFY(!parses(QStringLiteral("guidance: %1").arg(L.maxGuidance + 1)));
    QVERIFY(parses(QStringLiteral("width: %1").arg(L.maxSize)));
    QVERIFY(!parses(QStringLiteral("width: %1").arg(L.maxSize + L.sizeMultiple)));
    QVERIFY(parses(QStringLiteral("count: %1").arg(GenerationParams::kMaxCount)));
    QVERIFY(!parses(QStringLiteral("count: %1").arg(GenerationParams::kMaxCount + 1)));
}

QTEST_GUILESS_MAIN(TestPresetStore)
#include "tst_presetstore.moc"
