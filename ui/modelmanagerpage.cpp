#include "modelmanagerpage.h"

#include <QDesktopServices>
#include <QDir>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QUrl>
#include <QVBoxLayout>

#include "ModelManager.h"

namespace {

QString bytesText(qint64 bytes) { return QLocale().formattedDataSize(bytes, 1, QLocale::DataSizeSIFormat); }

QString timeLeftText(double seconds) {
    if (seconds < 0) return {};
    if (seconds < 90) return ModelManagerPage::tr("%1 s left").arg(qRound(seconds));
    if (seconds < 5400) return ModelManagerPage::tr("%1 min left").arg(qRound(seconds / 60));
    return ModelManagerPage::tr("%1 h left").arg(seconds / 3600, 0, 'f', 1);
}

QString approxText(const ModelManager::Model& m) {
    return ModelManagerPage::tr("\u2248 %1 GB").arg(m.approxGb, 0, 'f', 1);
}

QString sizeText(const ModelManager::Model& m) {
    using State = ModelManager::State;
    using Size = ModelManager::Model::SizeState;
    if (m.state == State::Installed) return ModelManagerPage::tr("%1 on disk").arg(bytesText(m.diskBytes));
    if (m.bytesTotal > 0) return ModelManagerPage::tr("%1 of %2").arg(bytesText(m.bytesDone), bytesText(m.bytesTotal));
    // The hub's exact figure for what a download fetches (and what is left of it after a partial one).
    if (m.sizeState == Size::Exact && m.downloadBytes >= 0) {
        if (m.bytesLeft >= 0 && m.bytesLeft < m.downloadBytes)
            return ModelManagerPage::tr("%1 left of %2").arg(bytesText(m.bytesLeft), bytesText(m.downloadBytes));
        return ModelManagerPage::tr("%1 to download").arg(bytesText(m.downloadBytes));
    }
    if (m.sizeState == Size::Fetching) return ModelManagerPage::tr("size\u2026");
    if (m.approxGb > 0) return approxText(m);
    if (m.diskBytes > 0) return ModelManagerPage::tr("%1 on disk").arg(bytesText(m.diskBytes));
    return {};
}

QString sizeToolTip(const ModelManager::Model& m) {
    using Size = ModelManager::Model::SizeState;
    if (m.state == ModelManager::State::Installed) return {};
    if (m.sizeState == Size::Exact)
        return ModelManagerPage::tr("The size of the files a download fetches, as the hub lists them");
    if (m.sizeState == Size::Fetching) return ModelManagerPage::tr("Asking the hub for the size");
    if (m.approxGb <= 0) return {};
    return m.sizeError.isEmpty()
               ? ModelManagerPage::tr("Approximate size")
               : ModelManagerPage::tr("Approximate size: the hub could not be asked (%1)").arg(m.sizeError);
}

QString statusText(const ModelManager::Model& m) {
    using State = ModelManager::State;
    switch (m.state) {
    case State::NotInstalled:
        return m.error.isEmpty() ? ModelManagerPage::tr("Not installed")
                                 : ModelManagerPage::tr("Not installed (%1)").arg(m.error);
    case State::Queued: return ModelManagerPage::tr("Waiting for the download before it");
    case State::Downloading: {
        QStringList parts{
            m.file.isEmpty() ? ModelManagerPage::tr("Downloading")
            : m.filesActive > 1
                ? ModelManagerPage::tr("Downloading %1 and %n more file(s)", nullptr, m.filesActive - 1).arg(m.file)
                : ModelManagerPage::tr("Downloading %1").arg(m.file)};
        if (m.bytesPerSecond > 0) parts << ModelManagerPage::tr("%1/s").arg(bytesText(qint64(m.bytesPerSecond)));
        if (m.secondsLeft >= 0) parts << timeLeftText(m.secondsLeft);
        return parts.join(QStringLiteral(", "));
    }
    case State::Paused:
        return m.error.isEmpty() ? ModelManagerPage::tr("Paused: Resume continues where it stopped")
                                 : ModelManagerPage::tr("Stopped: %1. Resume tries again from there").arg(m.error);
    case State::Partial:
        return ModelManagerPage::tr("Half downloaded (%1 on disk): Resume completes it").arg(bytesText(m.diskBytes));
    case State::Installed:
        return m.otherSnapshots > 0
                   ? ModelManagerPage::tr("Installed (and %n older revision(s))", nullptr, m.otherSnapshots)
                   : ModelManagerPage::tr("Installed");
    }
    return {};
}

}  // namespace

ModelManagerPage::ModelManagerPage(ModelManager* manager, QWidget* parent) : QWidget(parent), m_manager(manager) {
    setObjectName(QStringLiteral("modelManagerPage"));
    auto* help =
        new QLabel(tr("Models are downloaded into the Hugging Face cache (%1), where other tools find them too.")
                       .arg(QDir::toNativeSeparators(manager->cacheDir())),
                   this);
    help->setObjectName(QStringLiteral("modelManagerHelp"));
    help->setWordWrap(true);
    help->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* rows = new QWidget(this);
    m_rowsLayout = new QVBoxLayout(rows);
    m_rowsLayout->setContentsMargins(0, 0, 0, 0);
    m_rowsLayout->addStretch();
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(rows);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(help);
    layout->addWidget(scroll, 1);

    m_confirm = [this](const QString& question) {
        return QMessageBox::question(this, tr("Remove model"), question) == QMessageBox::Yes;
    };
    connect(manager, &ModelManager::listChanged, this, &ModelManagerPage::rebuildRows);
    connect(manager, &ModelManager::modelChanged, this, &ModelManagerPage::updateRow);
    connect(manager, &ModelManager::downloadFailed, this, [this](const QString& repoId, const QString& message) {
        emit errorOccurred(tr("Download of %1 stopped: %2").arg(repoId, message));
    });
    rebuildRows();
}

void ModelManagerPage::showEvent(QShowEvent* event) {
    QWidget::showEvent(event);
    // Each time the page comes up: sizes not known yet (or only estimated) are asked for, off the GUI thread.
    m_manager->fetchSizes();
}

void ModelManagerPage::setConfirmRemoval(std::function<bool(const QString&)> confirm) {
    m_confirm = std::move(confirm);
}

void ModelManagerPage::rebuildRows() {
    for (const Row& row : std::as_const(m_rows)) delete row.widget;
    m_rows.clear();
    int position = 0;
    for (const ModelManager::Model& m : m_manager->models()) {
        Row row;
        row.widget = new QFrame(this);
        row.widget->setObjectName(QStringLiteral("modelRow:") + m.repoId);
        static_cast<QFrame*>(row.widget)->setFrameShape(QFrame::StyledPanel);
        auto* name = new QLabel(
            QStringLiteral("<b>%1</b><br><small>%2</small>").arg(m.name.toHtmlEscaped(), m.repoId.toHtmlEscaped()),
            row.widget);
        name->setObjectName(QStringLiteral("name"));
        name->setMinimumWidth(170);
        row.size = new QLabel(row.widget);
        row.size->setObjectName(QStringLiteral("size"));
        row.size->setMinimumWidth(120);
        row.status = new QLabel(row.widget);
        row.status->setObjectName(QStringLiteral("status"));
        row.status->setWordWrap(true);
        row.bar = new QProgressBar(row.widget);
        row.bar->setObjectName(QStringLiteral("progress"));
        row.bar->setRange(0, 1000);
        row.bar->setTextVisible(true);
        const auto button = [&row](const QString& text, const char* objectName) {
            auto* b = new QPushButton(text, row.widget);
            b->setObjectName(QLatin1String(objectName));
            return b;
        };
        row.download = button(tr("Download"), "download");
        row.pause = button(tr("Pause"), "pause");
        row.resume = button(tr("Resume"), "resume");
        row.cancel = button(tr("Cancel"), "cancel");
        row.remove = button(tr("Remove…"), "remove");
        row.openFolder = button(tr("Open folder"), "openFolder");

        auto* middle = new QVBoxLayout;
        middle->addWidget(row.status);
        middle->addWidget(row.bar);
        auto* buttons = new QHBoxLayout;
        for (QPushButton* b : {row.download, row.pause, row.resume, row.cancel, row.remove, row.openFolder})
            buttons->addWidget(b);
        auto* layout = new QHBoxLayout(row.widget);
        layout->addWidget(name, 2);
        layout->addWidget(row.size, 1);
        layout->addLayout(middle, 3);
        layout->addLayout(buttons);

        const QString id = m.repoId;
        connect(row.download, &QPushButton::clicked, this, [this, id]() {
            QString error;
            if (!m_manager->download(id, &error)) emit errorOccurred(error);
        });
        connect(row.resume, &QPushButton::clicked, this, [this, id]() {
            QString error;
            if (!m_manager->resume(id, &error)) emit errorOccurred(error);
        });
        connect(row.pause, &QPushButton::clicked, this, [this, id]() { m_manager->pause(id); });
        connect(row.cancel, &QPushButton::clicked, this, [this, id]() { m_manager->cancel(id); });
        connect(row.remove, &QPushButton::clicked, this, [this, id]() { removeModel(id); });
        connect(row.openFolder, &QPushButton::clicked, this,
                [this, id]() { QDesktopServices::openUrl(QUrl::fromLocalFile(m_manager->model(id).folder)); });
        m_rowsLayout->insertWidget(position++, row.widget);
        m_rows.insert(id, row);
        updateRow(id);
    }
}

void ModelManagerPage::updateRow(const QString& repoId) {
    const auto it = m_rows.constFind(repoId);
    if (it == m_rows.constEnd()) return;
    const Row& row = *it;
    const ModelManager::Model m = m_manager->model(repoId);
    using State = ModelManager::State;
    row.size->setText(sizeText(m));
    row.size->setToolTip(sizeToolTip(m));
    row.status->setText(statusText(m));
    row.status->setToolTip(m.folder.isEmpty() ? QString() : QDir::toNativeSeparators(m.folder));
    const bool active = m.state == State::Downloading || m.state == State::Queued;
    const bool stopped = m.state == State::Paused || m.state == State::Partial;
    row.bar->setVisible(active || (stopped && m.bytesTotal > 0));
    row.bar->setValue(m.bytesTotal > 0 ? int(1000.0 * double(m.bytesDone) / double(m.bytesTotal)) : 0);
    row.bar->setEnabled(m.state != State::Paused);
    row.download->setVisible(m.state == State::NotInstalled);
    row.pause->setVisible(active);
    row.resume->setVisible(stopped);
    row.cancel->setVisible(active || stopped);
    row.cancel->setToolTip(tr("Stops the download and deletes what it fetched"));
    row.remove->setVisible(m.state == State::Installed);
    row.openFolder->setVisible(!m.folder.isEmpty() && QFileInfo::exists(m.folder));
    row.openFolder->setToolTip(QDir::toNativeSeparators(m.folder));
}

void ModelManagerPage::removeModel(const QString& repoId) {
    const ModelManager::Model m = m_manager->model(repoId);
    QString question = tr("Remove %1 (%2 on disk) from the Hugging Face cache?")
                           .arg(m.name, QLocale().formattedDataSize(m.diskBytes, 1, QLocale::DataSizeSIFormat));
    if (m.otherSnapshots > 0)
        question += QLatin1Char(' ') + tr("Its older revisions stay, and so do the files they share with it.");
    if (!m_confirm(question)) return;
    QString error;
    if (!m_manager->remove(repoId, &error)) emit errorOccurred(error);
}
