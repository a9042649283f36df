#include "nomodelpanel.h"

#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

#include "ModelDiscovery.h"
#include "icons.h"

NoModelPanel::NoModelPanel(QWidget* parent) : QWidget(parent), m_errors(new QLabel(this)) {
    setObjectName(QStringLiteral("noModelPanel"));
    auto* title = new QLabel(tr("<h2>No model found</h2>"), this);
    title->setObjectName(QStringLiteral("noModelTitle"));
    auto* help = new QLabel(this);
    help->setObjectName(QStringLiteral("noModelHelp"));
    help->setTextFormat(Qt::PlainText);
    help->setWordWrap(true);
    help->setTextInteractionFlags(Qt::TextSelectableByMouse);
    // app/ owns the wording (it knows where discovery looks); the commands below are what people copy.
    help->setText(QString::fromUtf8(ModelDiscovery::helpText));
    // Plain text in a fixed-pitch font that may wrap: a <pre> block set the panel's minimum width (ux-review 3, 5).
    auto* commands = new QLabel(QString::fromUtf8(ModelDiscovery::downloadCommands), this);
    commands->setObjectName(QStringLiteral("noModelCommands"));
    commands->setTextFormat(Qt::PlainText);
    commands->setWordWrap(true);
    commands->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    commands->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* searched = new QLabel(tr("Models are looked up in the Hugging Face cache (%1) and in the folders you add.")
                                    .arg(ModelDiscovery::hfCacheDir()),
                                this);
    searched->setWordWrap(true);
    m_errors->setWordWrap(true);
    m_errors->setStyleSheet(QStringLiteral("color: #b71c1c;"));
    m_errors->setVisible(false);

    auto* add = new QPushButton(Icons::get(QStringLiteral("folder-add"), QStyle::SP_DirOpenIcon),
                                tr("Add model folder…"), this);
    add->setObjectName(QStringLiteral("noModelAddButton"));
    auto* rescan = new QPushButton(tr("Look again"), this);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(add);
    buttons->addWidget(rescan);
    buttons->addStretch();

    auto* inner = new QVBoxLayout;
    inner->addWidget(title);
    inner->addWidget(help);
    inner->addWidget(commands);
    inner->addWidget(searched);
    inner->addWidget(m_errors);
    inner->addLayout(buttons);
    auto* box = new QWidget(this);
    box->setLayout(inner);
    box->setMaximumWidth(720);
    auto* layout = new QVBoxLayout(this);
    layout->addStretch();
    layout->addWidget(box, 0, Qt::AlignHCenter);
    layout->addStretch(2);

    connect(add, &QPushButton::clicked, this, &NoModelPanel::addModelFolderRequested);
    connect(rescan, &QPushButton::clicked, this, &NoModelPanel::rescanRequested);
}

void NoModelPanel::setScanErrors(const QStringList& errors) {
    m_errors->setText(errors.join(QLatin1Char('\n')));
    m_errors->setVisible(!errors.isEmpty());
}
