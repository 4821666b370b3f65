/**
 * The on-sale waiting room in the web app: when a hold is refused with ADMISSION_REQUIRED, the buyer
 * joins the on-sale's queue and sees their place and the estimated wait, polled every few seconds,
 * until admitted; the admission token is then kept for the on-sale's shows (this tab only) and sent
 * with the next hold as the Admission-Token header.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, type Schemas } from './api';

export type QueueAnswer = Schemas['QueueAnswer'];

/** How often the page asks for its place: polls are answered from memory, but a crowd is a crowd. */
const POLL_MS = 3_000;
const STORAGE_KEY = 'boxoffice.admission.';

/** The admission token for a show, while it is valid. */
export function admissionFor(showId: string, nowMs = Date.now()): string | undefined {
  const raw = sessionStorage.getItem(STORAGE_KEY + showId);
  if (!raw) return undefined;
  try {
    const kept = JSON.parse(raw) as { token: string; expiresAt: string };
    if (Date.parse(kept.expiresAt) > nowMs) return kept.token;
  } catch {
    // A garbled entry is as good as none.
  }
  sessionStorage.removeItem(STORAGE_KEY + showId);
  return undefined;
}

function keepAdmission(showId: string, admission: { token: string; expiresAt: string }): void {
  sessionStorage.setItem(STORAGE_KEY + showId, JSON.stringify(admission));
}

function waitText(seconds: number): string {
  if (seconds < 60) return 'less than a minute';
  const minutes = Math.round(seconds / 60);
  return minutes === 1 ? 'about a minute' : `about ${minutes} minutes`;
}

/** The queue for `onsaleId`, joined on mount; `onAdmitted` once an admission for `showId` is kept. */
export function QueuePanel({
  onsaleId,
  showId,
  onAdmitted,
}: {
  onsaleId: string;
  showId: string;
  onAdmitted: () => void;
}) {
  const [answer, setAnswer] = useState<QueueAnswer | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    let isCurrent = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const path = `/api/onsales/${encodeURIComponent(onsaleId)}/queue`;
    const ask = async (method: 'POST' | 'GET') => {
      const res = await api<QueueAnswer>(method, path);
      if (!isCurrent) return;
      if (!res.ok) {
        setProblem(res.error.message);
        timer = setTimeout(() => void ask('GET'), POLL_MS);
        return;
      }
      setProblem(null);
      setAnswer(res.value);
      if (res.value.state === 'admitted' && res.value.admission) {
        keepAdmission(showId, res.value.admission);
        onAdmitted();
        return;
      }
      if (res.value.state === 'waiting') timer = setTimeout(() => void ask('GET'), POLL_MS);
    };
    void ask('POST');
    return () => {
      isCurrent = false;
      clearTimeout(timer);
    };
  }, [onsaleId, showId]);

  return (
    <section class="queue-panel" aria-labelledby="queue-heading">
      <h2 id="queue-heading">You are in the queue</h2>
      <p role="status">
        {answer === null
          ? 'Joining the queue…'
          : answer.state === 'closed'
            ? 'This sale has closed: the seats are sold out, or your turn has passed.'
            : answer.state === 'admitted'
              ? 'It is your turn: choose your seats now.'
              : answer.position === null
                ? `The sale opens soon. Everyone who joined before it opens gets a random place, so there is no need to refresh. Opens in ${waitText(answer.estimatedWaitSeconds)}.`
                : `Your place: ${answer.position}. ${answer.ahead} ahead of you; estimated wait ${waitText(answer.estimatedWaitSeconds)}.`}
      </p>
      {problem && <p class="notice notice-error">{problem}</p>}
    </section>
  );
}
