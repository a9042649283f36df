// Shared by the tests that drive a real JobQueue on the tiny fixture model (tst_jobqueue, tst_faults): the fixture's
// path, a quick generation and the waits for a job's state or an idle queue (the engine runs on its own thread; the
// waits spin the event loop so that the queue's queued signals arrive).
#pragma once

#include <QElapsedTimer>
#include <QString>
#include <QtTest>

#include <functional>
#include <optional>

#include "JobQueue.h"

namespace queuetest {

inline QString fixture(const char* name = "tiny-koala-700m") {
    return QStringLiteral(KOALA_TEST_DATA "/fixtures/") + QLatin1String(name);
}

// The fixture model at 64x64 with few steps: well under a second per image on the CPU.
inline GenerationParams quickParams(const QString& prompt, quint64 seed, int steps, int count = 1) {
    GenerationParams p = GenerationParams::defaults();
    p.modelPath = fixture();
    p.prompt = prompt;
    p.seed = seed;
    p.steps = steps;
    p.width = 64;
    p.height = 64;
    p.count = count;
    return p;
}

inline bool waitUntil(const std::function<bool()>& done, int timeoutMs) {
    QElapsedTimer timer;
    timer.start();
    while (timer.elapsed() < timeoutMs) {
        if (done()) return true;
        QTest::qWait(10);
    }
    return false;
}

inline bool waitForState(JobQueue& queue, qint64 id, Job::State state, int timeoutMs = 120000) {
    return waitUntil(
        [&] {
            const std::optional<Job> job = queue.job(id);
            return job && job->state == state;
        },
        timeoutMs);
}

inline bool waitIdle(JobQueue& queue, int timeoutMs = 240000) {
    return waitUntil([&] { return !queue.isBusy() && queue.pendingCount() == 0; }, timeoutMs);
}

}  // namespace queuetest
