#include "ComputeSummary.h"

#include <QObject>
#include <QStringList>

namespace ComputeSummary {

namespace {

// "1.13" of "1.13.0", "2.11" of "2.11.0".
QString majorMinor(const std::string& version) {
    const QStringList parts = QString::fromStdString(version).split(QLatin1Char('.'));
    return parts.size() >= 2 ? parts[0] + QLatin1Char('.') + parts[1] : QString::fromStdString(version);
}

}  // namespace

QString statusLine(const koala::LoadOptions& options, const koala::DeviceInfo& device, const koala::BuildInfo& build) {
    const QString sep = QStringLiteral(" · ");
    const bool cudaPresent = device.device == koala::Device::Cuda;
    const koala::Device dev = koala::resolveDevice(options.device, cudaPresent);
    if (dev == koala::Device::Cuda && !cudaPresent)
        return QObject::tr("CUDA chosen, none available") + sep +
               (build.cudaCompiled ? QObject::tr("no CUDA device found") : QObject::tr("this build has no CUDA"));
    const QString dtype = QString::fromLatin1(koala::toString(koala::resolveDType(dev, options.dtype)));
    if (dev == koala::Device::Cuda)
        return QStringLiteral("CUDA") + sep + QString::fromStdString(device.name) + sep + dtype;
    return QStringLiteral("CPU") + sep + QStringLiteral("LibTorch ") + majorMinor(build.torchVersion) + sep + dtype;
}

QString statusLine(const koala::LoadOptions& options) {
    return statusLine(options, koala::defaultDevice(), koala::buildInfo());
}

QString aboutHtml(const koala::LoadOptions& options) {
    const koala::DeviceInfo device = koala::defaultDevice();
    QString html = QObject::tr("<p>Engine %1: %2.<br>Device: %3.<br>Images are computed on: %4.</p>")
                       .arg(QString::fromStdString(koala::buildInfo().engineVersion),
                            QString::fromStdString(koala::describeBuild()).toHtmlEscaped(),
                            QString::fromStdString(koala::describeDevice(device)).toHtmlEscaped(),
                            statusLine(options, device, koala::buildInfo()).toHtmlEscaped());
    return html;
}

}  // namespace ComputeSummary
