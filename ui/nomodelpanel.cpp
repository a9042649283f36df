#include "nomodelpanel.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

#include "icons.h"
#include "modelmanagerpage.h"

NoModelPanel::NoModelPanel(ModelManager* manager, QWidget* parent)
    : QWidget(parent), m_errors(new QLabel(this)), m_page(new ModelManagerPage(manager, this)) {
    setObjectName(QStringLiteral("noModelPanel"));
    // One line, no title repeating it (ux-review 5); the manager below says where models go.
    auto* help = new QLabel(tr("<b>No model yet.</b> Download one below, or add a folder that holds a diffusers "
                               "model (model_index.json)."),
                            this);
    help->setObjectName(QStringLiteral("noModelHelp"));
    help->setWordWrap(true);
    m_errors->setWordWrap(true);
    m_errors->setStyleSheet(QStringLiteral("color: #b71c1c;"));
    m_errors->setVisible(false);

    auto* add = new QPushButton(Icons::get(QStringLiteral("folder-add"), QStyle::SP_DirOpenIcon),
                                tr("Add model folder…"), this);
    add->setObjectName(QStringLiteral("noModelAddButton"));
    auto* rescan = new QPushButton(tr("Look again"), this);
    auto* top = new QHBoxLayout;
    top->addWidget(help, 1);
    top->addWidget(add);
    top->addWidget(rescan);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(m_errors);
    layout->addWidget(m_page, 1);

    connect(add, &QPushButton::clicked, this, &NoModelPanel::addModelFolderRequested);
    connect(rescan, &QPushButton::clicked, this, &NoModelPanel::rescanRequested);
}

void NoModelPanel::setScanErrors(const QStringList& errors) {
    m_errors->setText(errors.join(QLatin1Char('\n')));
    m_errors->setVisible(!errors.isEmpty());
}
