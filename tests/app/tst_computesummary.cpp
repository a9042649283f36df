#include <QtTest>

#include "ComputeSummary.h"

// The status bar's "where images are computed" line: the engine's device/dtype rules, spelled for the user.
class TestComputeSummary : public QObject {
    Q_OBJECT

private slots:
    void cudaMachine();
    void cpuMachine();
    void cudaChosenButAbsent();
    void autoFollowsTheEngineRule();
    void thisMachine();
};

namespace {

koala::DeviceInfo h200() {
    koala::DeviceInfo d;
    d.device = koala::Device::Cuda;
    d.name = "NVIDIA H200";
    d.count = 1;
    d.totalMemoryBytes = 141LL << 30;
    return d;
}

koala::BuildInfo build(const char* version, bool cuda) {
    koala::BuildInfo b;
    b.torchVersion = version;
    b.cudaCompiled = cuda;
    return b;
}

}  // namespace

void TestComputeSummary::cudaMachine() {
    koala::LoadOptions o = koala::defaultLoadOptions();
    QCOMPARE(ComputeSummary::statusLine(o, h200(), build("2.11.0", true)), QStringLiteral("CUDA · NVIDIA H200 · fp16"));
    o.dtype = koala::DType::BF16;
    QCOMPARE(ComputeSummary::statusLine(o, h200(), build("2.11.0", true)), QStringLiteral("CUDA · NVIDIA H200 · bf16"));
    o.device = koala::Device::Cpu;  // an explicit CPU choice on a GPU machine
    o.dtype = koala::DType::Auto;
    QCOMPARE(ComputeSummary::statusLine(o, h200(), build("2.11.0", true)),
             QStringLiteral("CPU · LibTorch 2.11 · fp32"));
}

void TestComputeSummary::cpuMachine() {
    const koala::DeviceInfo cpu;  // Device::Cpu, "CPU"... as defaultDevice() gives without CUDA
    QCOMPARE(ComputeSummary::statusLine(koala::defaultLoadOptions(), cpu, build("1.13.0", false)),
             QStringLiteral("CPU · LibTorch 1.13 · fp32"));
}

void TestComputeSummary::cudaChosenButAbsent() {
    koala::LoadOptions o = koala::defaultLoadOptions();
    o.device = koala::Device::Cuda;
    const koala::DeviceInfo cpu;
    QVERIFY(
        ComputeSummary::statusLine(o, cpu, build("1.13.0", false)).contains(QStringLiteral("this build has no CUDA")));
    QVERIFY(ComputeSummary::statusLine(o, cpu, build("2.11.0", true)).contains(QStringLiteral("no CUDA device found")));
}

void TestComputeSummary::autoFollowsTheEngineRule() {
    // Auto is resolved by koala::resolveDevice with the machine's "CUDA present" given: both answers, either machine.
    for (const bool present : {true, false}) {
        const koala::DeviceInfo d = present ? h200() : koala::DeviceInfo{};
        const koala::Device dev = koala::resolveDevice(koala::Device::Auto, present);
        QCOMPARE(dev, present ? koala::Device::Cuda : koala::Device::Cpu);
        const QString line = ComputeSummary::statusLine(koala::defaultLoadOptions(), d, build("2.11.0", true));
        QVERIFY2(line.startsWith(dev == koala::Device::Cuda ? QStringLiteral("CUDA · ") : QStringLiteral("CPU · ")),
                 qPrintable(line));
    }
}

void TestComputeSummary::thisMachine() {
    // Whatever this machine is, the line agrees with the engine's own description of it.
    const koala::DeviceInfo d = koala::defaultDevice();
    const QString line = ComputeSummary::statusLine(koala::defaultLoadOptions());
    if (d.device == koala::Device::Cuda) {
        QVERIFY(koala::cudaAvailable());
        QVERIFY(line.startsWith(QStringLiteral("CUDA · ") + QString::fromStdString(d.name)));
    } else {
        const QString v = QString::fromStdString(koala::buildInfo().torchVersion);
        QVERIFY2(line.startsWith(QStringLiteral("CPU · LibTorch ") + v.section(QLatin1Char('.'), 0, 1)),
                 qPrintable(line));
        QCOMPARE(QString::fromStdString(koala::describeDevice(d)), QStringLiteral("CPU"));
    }
    const koala::BuildInfo b = koala::buildInfo();
    QVERIFY(!b.torchVersion.empty() && b.torchVersion != "unknown");
    QVERIFY(b.torchSource == "Debian" || b.torchSource == "PyPI" || b.torchSource == "custom");
#ifdef KOALA_WITH_CUDA
    QVERIFY(b.cudaCompiled);
    QVERIFY(!b.cudaVersion.empty());
#else
    QVERIFY(!b.cudaCompiled);
#endif
    QVERIFY(ComputeSummary::aboutHtml(koala::defaultLoadOptions()).contains(QStringLiteral("LibTorch ")));
}

QTEST_GUILESS_MAIN(TestComputeSummary)
#include "tst_computesummary.moc"
