/**
 * The show's seat map (/shows/:id): the screen on top, rows as the screen's layout places them, a legend,
 * live updates from the seat feed, explicit selection or best available, and the hold with its countdown.
 * Every seat is a button named "A7, Gold, ₹300, available"; arrow keys move between seats.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import {
  type ApiFailure,
  api,
  type Hold,
  newIdempotencyKey,
  type Seat,
  type SeatMap,
  type SeatStatus,
  type Show,
  session,
} from './api';
import { categoryName, listJoin, money, showDateTime, zoneOf } from './format';
import { admissionFor, QueuePanel } from './onsale-queue';
import { navigate } from './router';
import { followSeatFeed } from './seat-feed';
import { ErrorNote, Loading, useTitle } from './ui';

/** The service's default per-user limit (MAX_SEATS_PER_USER); the server has the last word. */
const MAX_SELECTION = 10;
type Notice = { kind: 'info' | 'error'; text: string } | null;

const STATUS_TEXT: Record<SeatStatus, string> = {
  available: 'available',
  held: 'held',
  booked: 'booked',
  blocked: 'not for sale',
};

export function SeatMapPage({ showId }: { showId: string }) {
  const [show, setShow] = useState<Show | null>(null);
  const [map, setMap] = useState<SeatMap | null>(null);
  const [statuses, setStatuses] = useState<Record<string, SeatStatus>>({});
  const [selected, setSelected] = useState<string[]>(() => loadSelection(showId));
  const [hold, setHold] = useState<Hold | null>(() => loadHold(showId));
  const [notice, setNotice] = useState<Notice>(null);
  const [loadError, setLoadError] = useState<ApiFailure | null>(null);
  const [isLive, setIsLive] = useState(false);
  const [isBusy, setIsBusy] = useState(false);
  /** Set when a hold was refused for want of an admission: the on-sale whose queue to wait in. */
  const [queueFor, setQueueFor] = useState<string | null>(null);
  const pending = useRef<Set<string>>(new Set());
  const selectionHeading = useRef<HTMLHeadingElement>(null);
  const hadHold = useRef(hold !== null);
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  useTitle(show ? `Seats: ${show.movie.title}` : 'Choose seats');

  useEffect(() => {
    let isCurrent = true;
    void Promise.all([
      api<{ show: Show }>('GET', `/api/shows/${encodeURIComponent(showId)}`),
      api<SeatMap>('GET', `/api/shows/${encodeURIComponent(showId)}/seats`),
    ]).then(([s, m]) => {
      if (!isCurrent) return;
      if (!s.ok) return setLoadError(s.error);
      if (!m.ok) return setLoadError(m.error);
      setShow(s.value.show);
      setMap(m.value);
      setStatuses((prev) => ({ ...Object.fromEntries(m.value.seats.map((x) => [x.id, x.status])), ...prev }));
    });
    return () => {
      isCurrent = false;
    };
  }, [showId]);

  // The feed: statuses change without a reload; a selected seat someone else takes is dropped.
  useEffect(() => {
    const apply = (changes: { id: string; status: SeatStatus }[], isSnapshot: boolean) => {
      setStatuses((prev) => {
        const next = isSnapshot ? {} : { ...prev };
        for (const c of changes) next[c.id] = c.status;
        return next;
      });
      const lost = selectedRef.current.filter((id) =>
        changes.some((c) => c.id === id && c.status !== 'available' && !pending.current.has(id)),
      );
      if (lost.length > 0) {
        setSelected((sel) => sel.filter((id) => !lost.includes(id)));
        setNotice({
          kind: 'error',
          text: `${listJoin(lost)} ${lost.length === 1 ? 'was' : 'were'} just taken by someone else and ${lost.length === 1 ? 'has' : 'have'} been removed from your selection. Please choose another seat.`,
        });
      }
    };
    return followSeatFeed(showId, {
      snapshot: (_v, seats) => apply(seats, true),
      delta: (_v, changes) => apply(changes, false),
      connection: setIsLive,
    });
  }, [showId]);

  // A hold remembered from before a reload may have been paid, failed or released since: ask.
  useEffect(() => {
    const remembered = loadHold(showId);
    if (!remembered) return;
    void api<{ hold: Hold }>('GET', `/api/holds/${encodeURIComponent(remembered.id)}`).then((res) => {
      if (!res.ok) setHold((current) => (current?.id === remembered.id ? null : current));
    });
  }, [showId]);

  // When a hold ends (released, run out) its panel goes away with the focus in it: move the focus to
  // where the user chooses seats again rather than dropping it on the page.
  useEffect(() => {
    if (hadHold.current && !hold) selectionHeading.current?.focus();
    hadHold.current = hold !== null;
  }, [hold]);

  useEffect(() => saveSelection(showId, selected), [showId, selected]);
  useEffect(() => saveHold(showId, hold), [showId, hold]);

  if (loadError) return <ErrorNote error={loadError} />;
  if (!show || !map) return <Loading what="seat map" />;

  const seatsById = new Map(map.seats.map((s) => [s.id, s]));
  const currency = map.currency ?? show.currency;
  const heldByMe = new Set(hold?.seats ?? []);

  const toggle = (seat: Seat) => {
    if (hold) {
      setNotice({ kind: 'info', text: 'You are holding seats. Release them to choose different ones.' });
      return;
    }
    const status = statuses[seat.id] ?? seat.status;
    if (selected.includes(seat.id)) {
      setSelected(selected.filter((id) => id !== seat.id));
      setNotice(null);
      return;
    }
    if (status !== 'available') {
      setNotice({
        kind: 'error',
        text: `${seat.id} is ${STATUS_TEXT[status]}. Please choose an available seat.`,
      });
      return;
    }
    if (selected.length >= MAX_SELECTION) {
      setNotice({ kind: 'error', text: `You can choose up to ${MAX_SELECTION} seats at a time.` });
      return;
    }
    setSelected([...selected, seat.id]);
    setNotice(null);
  };

  const requireLogin = () => {
    if (session.token) return false;
    navigate(`/login?next=${encodeURIComponent(`/shows/${showId}`)}`);
    return true;
  };

  const placeHold = async (body: { seats: string[] } | { count: number; category?: string }) => {
    if (requireLogin()) return;
    setIsBusy(true);
    const requested = 'seats' in body ? body.seats : [];
    for (const id of requested) pending.current.add(id);
    const admission = admissionFor(showId);
    const res = await api<{ hold: Hold }>('POST', `/api/shows/${encodeURIComponent(showId)}/holds`, body, {
      'idempotency-key': newIdempotencyKey(),
      ...(admission ? { 'admission-token': admission } : {}),
    });
    pending.current.clear();
    setIsBusy(false);
    if (res.ok) {
      setHold(res.value.hold);
      setSelected([]);
      setNotice({
        kind: 'info',
        text: `Held ${listJoin(res.value.hold.seats)} for you. Continue to checkout before the time runs out.`,
      });
      return;
    }
    if (res.error.code === 'UNAUTHENTICATED') return requireLogin();
    const onsaleId = res.error.details.onsaleId;
    if (res.error.code === 'ADMISSION_REQUIRED' && typeof onsaleId === 'string') {
      setQueueFor(onsaleId);
      setNotice({ kind: 'info', text: 'This show is selling through a queue. Your seats stay selected.' });
      return;
    }
    const taken = (res.error.details.seats as string[] | undefined) ?? [];
    if (res.error.code === 'SEATS_UNAVAILABLE' && taken.length > 0)
      setSelected((sel) => sel.filter((id) => !taken.includes(id)));
    setNotice({
      kind: 'error',
      text: explainRefusal(res.error, 'seats' in body ? body.seats.length : body.count),
    });
  };

  const seatCount = selected.reduce((sum, id) => sum + (seatsById.get(id)?.price ?? 0), 0);
  const categories = [...new Set(map.seats.map((s) => s.category))];

  return (
    <div class="seat-page">
      <header class="page-head">
        <h1 id="show-title">{show.movie.title}</h1>
        <p>
          {show.theater.name}, {show.screen.name} · {showDateTime(show.startTime, zoneOf(show.theater))} ·{' '}
          {show.format} · {show.language}
        </p>
        <p class="feed-state" role="status">
          {isLive ? 'Seats update live.' : 'Connecting to live seat updates…'}
        </p>
      </header>

      <Legend categories={categories} prices={show.prices} currency={currency} />

      {queueFor && (
        <QueuePanel
          onsaleId={queueFor}
          showId={showId}
          onAdmitted={() => {
            setQueueFor(null);
            setNotice({ kind: 'info', text: 'It is your turn: hold your seats now.' });
          }}
        />
      )}

      <div class="notice-slot" aria-live="polite">
        {notice && (
          <p class={`notice notice-${notice.kind}`} role={notice.kind === 'error' ? 'alert' : 'status'}>
            {notice.text}
          </p>
        )}
      </div>

      <SeatGrid
        map={map}
        statuses={statuses}
        selected={selected}
        heldByMe={heldByMe}
        currency={currency}
        onToggle={toggle}
      />

      {hold ? (
        <HoldPanel
          hold={hold}
          currency={currency}
          total={hold.seats.reduce((sum, id) => sum + (seatsById.get(id)?.price ?? 0), 0)}
          onChange={setHold}
          onNotice={setNotice}
        />
      ) : (
        <aside class="panel" aria-label="Your selection">
          <h2 ref={selectionHeading} tabIndex={-1}>
            Your selection
          </h2>
          <p>
            {selected.length === 0
              ? 'No seats chosen yet. Pick seats on the map, or let us find the best ones.'
              : `${listJoin(selected)}: ${money(seatCount, currency)}`}
          </p>
          <div class="actions">
            <button
              type="button"
              class="primary"
              disabled={selected.length === 0 || isBusy}
              onClick={() => void placeHold({ seats: selected })}
            >
              Hold seats
            </button>
            {selected.length > 0 && (
              <button type="button" onClick={() => setSelected([])}>
                Clear selection
              </button>
            )}
          </div>
          <BestAvailable categories={categories} isBusy={isBusy} onFind={(b) => void placeHold(b)} />
        </aside>
      )}
    </div>
  );
}

function explainRefusal(error: ApiFailure, wanted: number): string {
  const seats = (error.details.seats as string[] | undefined) ?? [];
  switch (error.code) {
    case 'SEATS_UNAVAILABLE':
      return seats.length > 0
        ? `${listJoin(seats)} ${seats.length === 1 ? 'was' : 'were'} just taken by someone else, so nothing was held. We removed ${seats.length === 1 ? 'it' : 'them'} from your selection: choose another seat and hold again.`
        : `There are not ${wanted} seats together left${wanted > 1 ? ' in one row' : ''}. Try fewer seats or another category.`;
    case 'SINGLE_SEAT_STRANDED':
      return `This show does not allow leaving a single empty seat, and your choice would leave ${listJoin(seats)} on its own. Add ${listJoin(seats)} to your selection, or choose seats right next to ${seats.length === 1 ? 'it' : 'them'}.`;
    case 'SEAT_LIMIT_EXCEEDED':
      return `${error.message}. Release some seats or choose fewer.`;
    case 'ADMISSION_REQUIRED':
      return 'This show is on a queued sale: join the queue and wait for your turn before choosing seats.';
    case 'RATE_LIMITED':
      return 'Too many tries in a short time. Wait a few seconds and try again.';
    default:
      return `We could not hold these seats: ${error.message}.`;
  }
}

function Legend({
  categories,
  prices,
  currency,
}: {
  categories: string[];
  prices: Record<string, number>;
  currency: string;
}) {
  return (
    <section class="legend" aria-label="Legend">
      <ul class="legend-list">
        <li>
          <span class="seat-swatch seat-available" aria-hidden="true" /> Available
        </li>
        <li>
          <span class="seat-swatch seat-selected" aria-hidden="true">
            ✓
          </span>{' '}
          Selected
        </li>
        <li>
          <span class="seat-swatch seat-held" aria-hidden="true" /> Held by someone
        </li>
        <li>
          <span class="seat-swatch seat-booked" aria-hidden="true">
            ✕
          </span>{' '}
          Booked
        </li>
        <li>
          <span class="seat-swatch seat-blocked" aria-hidden="true">
            –
          </span>{' '}
          Not for sale
        </li>
      </ul>
      <ul class="legend-list categories">
        {categories.map((c) => (
          <li key={c}>
            <strong>{categoryName(c)}</strong> {money(prices[c], currency)}
          </li>
        ))}
      </ul>
    </section>
  );
}

interface GridProps {
  map: SeatMap;
  statuses: Record<string, SeatStatus>;
  selected: string[];
  heldByMe: Set<string>;
  currency: string;
  onToggle(seat: Seat): void;
}

function SeatGrid({ map, statuses, selected, heldByMe, currency, onToggle }: GridProps) {
  const rows = useMemo(() => {
    const byRow = new Map<string, Seat[]>(map.layout.rows.map((r) => [r, []]));
    for (const s of map.seats) byRow.get(s.row)?.push(s);
    return map.layout.rows.map((label) => ({ label, seats: byRow.get(label) ?? [] }));
  }, [map]);
  const [focusId, setFocusId] = useState<string>(() => rows[0]?.seats[0]?.id ?? '');
  const gridRef = useRef<HTMLDivElement>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const [isWiderThanView, setIsWiderThanView] = useState(false);

  // On a phone a big screen is wider than the view: start at the middle (where the best seats are, under
  // the centre of the screen) and say that the rows go on sideways.
  useEffect(() => {
    const view = scrollRef.current;
    if (!view) return;
    const measure = () => setIsWiderThanView(view.scrollWidth > view.clientWidth + 1);
    measure();
    if (view.scrollWidth > view.clientWidth) view.scrollLeft = (view.scrollWidth - view.clientWidth) / 2;
    addEventListener('resize', measure);
    return () => removeEventListener('resize', measure);
  }, [map]);

  const moveFocus = (seat: Seat, key: string): Seat | undefined => {
    const r = rows.findIndex((row) => row.label === seat.row);
    const row = rows[r]!;
    const i = row.seats.indexOf(seat);
    if (key === 'ArrowLeft') return row.seats[i - 1];
    if (key === 'ArrowRight') return row.seats[i + 1];
    if (key === 'Home') return row.seats[0];
    if (key === 'End') return row.seats[row.seats.length - 1];
    const other = rows[key === 'ArrowUp' ? r - 1 : key === 'ArrowDown' ? r + 1 : -1];
    if (!other || other.seats.length === 0) return undefined;
    return other.seats.reduce((best, s) =>
      Math.abs(s.column - seat.column) < Math.abs(best.column - seat.column) ? s : best,
    );
  };

  const onKeyDown = (event: KeyboardEvent, seat: Seat) => {
    const target = moveFocus(seat, event.key);
    if (!target) return;
    event.preventDefault();
    setFocusId(target.id);
    gridRef.current?.querySelector<HTMLButtonElement>(`[data-seat="${target.id}"]`)?.focus();
  };

  let lastCategory = '';
  return (
    <section class="seat-map" aria-labelledby="seat-map-title">
      <h2 id="seat-map-title" class="visually-hidden">
        Seat map
      </h2>
      <p class="visually-hidden">
        The screen is in front of row {map.layout.rows[0]}. Use the arrow keys to move between seats and Enter
        or Space to choose one.
      </p>
      {isWiderThanView && (
        <p class="hint scroll-hint" aria-hidden="true">
          ← Scroll sideways for the whole row →
        </p>
      )}
      <div class="seat-scroll" ref={scrollRef}>
        <div
          class="seat-grid"
          ref={gridRef}
          style={{ '--columns': String(map.layout.columns) } as Record<string, string>}
        >
          <div class="screen-wrap" aria-hidden="true">
            <div class="screen">Screen</div>
          </div>
          {rows.map((row) => {
            const category = row.seats[0]?.category ?? '';
            const header =
              category !== lastCategory ? (
                <div class="category-divider" key={`cat-${row.label}`}>
                  <span>
                    {categoryName(category)} · {money(row.seats[0]?.price, currency)}
                  </span>
                </div>
              ) : null;
            lastCategory = category;
            return [
              header,
              <fieldset class="seat-row" key={row.label}>
                <legend class="visually-hidden">Row {row.label}</legend>
                <span class="row-label" aria-hidden="true">
                  {row.label}
                </span>
                <div class="row-seats">
                  {row.seats.map((seat) => {
                    const status = statuses[seat.id] ?? seat.status;
                    const isSelected = selected.includes(seat.id);
                    const isMine = heldByMe.has(seat.id);
                    const state = isMine ? 'mine' : isSelected ? 'selected' : status;
                    const stateText = isMine ? 'held by you' : isSelected ? 'selected' : STATUS_TEXT[status];
                    return (
                      <button
                        type="button"
                        key={seat.id}
                        data-seat={seat.id}
                        class={`seat seat-${state}`}
                        style={{ gridColumn: String(seat.column + 1) }}
                        aria-label={`${seat.id}, ${categoryName(seat.category)}, ${money(seat.price, currency)}, ${stateText}`}
                        aria-pressed={isSelected}
                        aria-disabled={status !== 'available' && !isSelected}
                        tabIndex={seat.id === focusId ? 0 : -1}
                        onFocus={() => setFocusId(seat.id)}
                        onKeyDown={(e) => onKeyDown(e, seat)}
                        onClick={() => onToggle(seat)}
                      >
                        {/* The label a seat shows is where its name starts ("A7, Classic, …"), so a
                            voice-control user can say what they see (WCAG 2.5.3, label in name). */}
                        <span aria-hidden="true">
                          {state === 'selected' || state === 'mine'
                            ? '✓'
                            : state === 'booked'
                              ? '✕'
                              : state === 'blocked'
                                ? '–'
                                : seat.id}
                        </span>
                      </button>
                    );
                  })}
                </div>
                <span class="row-label" aria-hidden="true">
                  {row.label}
                </span>
              </fieldset>,
            ];
          })}
        </div>
      </div>
    </section>
  );
}

function BestAvailable({
  categories,
  isBusy,
  onFind,
}: {
  categories: string[];
  isBusy: boolean;
  onFind(body: { count: number; category?: string }): void;
}) {
  const [count, setCount] = useState(2);
  const [category, setCategory] = useState('');
  return (
    <form
      class="best-available"
      onSubmit={(e) => {
        e.preventDefault();
        onFind(category ? { count, category } : { count });
      }}
    >
      <h3>Or let us pick</h3>
      <div class="field-row">
        <label>
          Number of seats
          <input
            type="number"
            min={1}
            max={MAX_SELECTION}
            value={count}
            onInput={(e) =>
              setCount(Math.max(1, Math.min(MAX_SELECTION, Number(e.currentTarget.value) || 1)))
            }
          />
        </label>
        <label>
          Category
          <select value={category} onChange={(e) => setCategory(e.currentTarget.value)}>
            <option value="">Any</option>
            {categories.map((c) => (
              <option key={c} value={c}>
                {categoryName(c)}
              </option>
            ))}
          </select>
        </label>
      </div>
      <button type="submit" disabled={isBusy}>
        Hold best available seats
      </button>
    </form>
  );
}

function HoldPanel({
  hold,
  currency,
  total,
  onChange,
  onNotice,
}: {
  hold: Hold;
  currency: string;
  total: number;
  onChange(hold: Hold | null): void;
  onNotice(notice: Notice): void;
}) {
  const [now, setNow] = useState(Date.now());
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    headingRef.current?.focus();
    return () => clearInterval(timer);
  }, []);
  const leftSeconds = Math.max(0, Math.round((Date.parse(hold.expiresAt) - now) / 1000));
  useEffect(() => {
    if (leftSeconds > 0) return;
    onChange(null);
    onNotice({ kind: 'error', text: 'Your hold ran out and the seats were released. Choose seats again.' });
  }, [leftSeconds]);
  const minutes = Math.floor(leftSeconds / 60);
  const seconds = String(leftSeconds % 60).padStart(2, '0');

  const extend = async () => {
    const res = await api<{ hold: Hold }>('POST', `/api/holds/${hold.id}/extend`);
    if (res.ok) {
      onChange(res.value.hold);
      onNotice({ kind: 'info', text: 'Your hold was extended.' });
    } else if (res.error.code === 'HOLD_EXPIRED' || res.error.status === 404) {
      onChange(null);
      onNotice({ kind: 'error', text: 'Your hold has already ended. Choose seats again.' });
    } else onNotice({ kind: 'error', text: `We could not extend your hold: ${res.error.message}.` });
  };
  const release = async () => {
    const res = await api<void>('DELETE', `/api/holds/${hold.id}`);
    onChange(null);
    onNotice(
      res.ok || res.error.status === 404 || res.error.status === 410
        ? { kind: 'info', text: `Released ${listJoin(hold.seats)}.` }
        : { kind: 'error', text: `We could not release the seats: ${res.error.message}.` },
    );
  };

  return (
    <aside class="panel hold-panel" aria-label="Your held seats">
      <h2 ref={headingRef} tabIndex={-1}>
        Seats held: {listJoin(hold.seats)}
      </h2>
      <p>Total before offers and fees: {money(total, currency)}</p>
      <p class="countdown" role="timer" aria-live="off">
        Held for {minutes}:{seconds} more
      </p>
      <div class="actions">
        <a class="button primary" href={`/checkout/${encodeURIComponent(hold.id)}`}>
          Continue to checkout
        </a>
        <button type="button" onClick={() => void extend()}>
          Extend hold
        </button>
        <button type="button" onClick={() => void release()}>
          Release seats
        </button>
      </div>
    </aside>
  );
}

function loadSelection(showId: string): string[] {
  try {
    return JSON.parse(sessionStorage.getItem(`boxoffice.selection.${showId}`) ?? '[]');
  } catch {
    return [];
  }
}
function saveSelection(showId: string, selected: string[]): void {
  sessionStorage.setItem(`boxoffice.selection.${showId}`, JSON.stringify(selected));
}
function loadHold(showId: string): Hold | null {
  try {
    const hold = JSON.parse(sessionStorage.getItem(`boxoffice.hold.${showId}`) ?? 'null') as Hold | null;
    return hold && Date.parse(hold.expiresAt) > Date.now() ? hold : null;
  } catch {
    return null;
  }
}
function saveHold(showId: string, hold: Hold | null): void {
  if (hold) sessionStorage.setItem(`boxoffice.hold.${showId}`, JSON.stringify(hold));
  else sessionStorage.removeItem(`boxoffice.hold.${showId}`);
}
