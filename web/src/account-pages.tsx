/** Register, log in, profile, my bookings (cancel and refund), and the ticket with its QR code. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type Booking, type Show, session, type User } from './api';
import { listJoin, money, showDateTime, zoneOf } from './format';
import { navigate, useLocation } from './router';
import { ErrorNote, Loading, useApi, useTitle, useUser } from './ui';

function nextPath(query: URLSearchParams): string {
  const next = query.get('next') ?? '/';
  // Only paths of this app: never an open redirect to another site.
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

function useFocusOnMount<T extends HTMLElement>() {
  const ref = useRef<T>(null);
  useEffect(() => ref.current?.focus(), []);
  return ref;
}

export function LoginPage() {
  const { query } = useLocation();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const first = useFocusOnMount<HTMLInputElement>();
  useTitle('Log in');
  const submit = async (e: Event) => {
    e.preventDefault();
    const res = await api<{ token: string }>('POST', '/api/login', { email, password });
    if (!res.ok)
      return setError(
        res.error.code === 'INVALID_CREDENTIALS'
          ? 'That email and password do not match an account. Check them, or create an account.'
          : res.error.message,
      );
    session.set(res.value.token);
    navigate(nextPath(query), { replace: true });
  };
  return (
    <form class="panel narrow" onSubmit={submit}>
      <h1>Log in</h1>
      {error && (
        <p class="notice notice-error" role="alert">
          {error}
        </p>
      )}
      <label class="field">
        Email
        <input
          ref={first}
          type="email"
          autocomplete="email"
          required
          value={email}
          onInput={(e) => setEmail(e.currentTarget.value)}
        />
      </label>
      <label class="field">
        Password
        <input
          type="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
      </label>
      <button type="submit" class="primary">
        Log in
      </button>
      <p>
        New here? <a href={`/register?${query}`}>Create an account</a>
      </p>
    </form>
  );
}

export function RegisterPage() {
  const { query } = useLocation();
  const [form, setForm] = useState({ name: '', email: '', password: '', phone: '' });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const first = useFocusOnMount<HTMLInputElement>();
  useTitle('Create an account');
  const set = (k: keyof typeof form) => (e: { currentTarget: HTMLInputElement }) =>
    setForm({ ...form, [k]: e.currentTarget.value });
  const submit = async (e: Event) => {
    e.preventDefault();
    const body = {
      name: form.name,
      email: form.email,
      password: form.password,
      ...(form.phone ? { phone: form.phone } : {}),
    };
    const res = await api<{ token: string }>('POST', '/api/register', body);
    if (!res.ok) {
      if (res.error.code === 'EMAIL_TAKEN')
        return setErrors({ email: 'An account with this email exists already. Log in instead.' });
      const fields = (res.error.details.fields as Record<string, string> | undefined) ?? {};
      return setErrors(Object.keys(fields).length > 0 ? fields : { form: res.error.message });
    }
    session.set(res.value.token);
    navigate(nextPath(query), { replace: true });
  };
  return (
    <form class="panel narrow" onSubmit={submit}>
      <h1>Create an account</h1>
      {errors.form && (
        <p class="notice notice-error" role="alert">
          {errors.form}
        </p>
      )}
      <label class="field">
        Name
        <input ref={first} autocomplete="name" required value={form.name} onInput={set('name')} />
        {errors.name && <span class="field-error">{errors.name}</span>}
      </label>
      <label class="field">
        Email
        <input type="email" autocomplete="email" required value={form.email} onInput={set('email')} />
        {errors.email && <span class="field-error">{errors.email}</span>}
      </label>
      <label class="field">
        Password
        <input
          type="password"
          autocomplete="new-password"
          required
          minLength={8}
          value={form.password}
          onInput={set('password')}
        />
        <span class="hint">At least 8 characters.</span>
        {errors.password && <span class="field-error">{errors.password}</span>}
      </label>
      <label class="field">
        Phone (optional)
        <input
          type="tel"
          autocomplete="tel"
          value={form.phone}
          onInput={set('phone')}
          placeholder="+919876543210"
        />
        {errors.phone && <span class="field-error">{errors.phone}</span>}
      </label>
      <button type="submit" class="primary">
        Create account
      </button>
      <p>
        Have an account? <a href={`/login?${query}`}>Log in</a>
      </p>
    </form>
  );
}

export function ProfilePage() {
  const { user, isLoading } = useUser();
  const [form, setForm] = useState<{ name: string; phone: string } | null>(null);
  const [message, setMessage] = useState('');
  useTitle('Your profile');
  useEffect(() => {
    if (user) setForm({ name: user.name, phone: user.phone ?? '' });
  }, [user]);
  if (isLoading) return <Loading what="profile" />;
  if (!user) return <SignInPrompt what="see your profile" />;
  if (!form) return null;
  const save = async (e: Event) => {
    e.preventDefault();
    const res = await api<{ user: User }>('PATCH', '/api/me', {
      name: form.name,
      ...(form.phone ? { phone: form.phone } : {}),
    });
    setMessage(res.ok ? 'Saved.' : `Not saved: ${res.error.message}.`);
  };
  const logout = async () => {
    await api('POST', '/api/logout');
    session.set(null);
    navigate('/');
  };
  return (
    <div class="narrow">
      <form class="panel" onSubmit={save}>
        <h1>Your profile</h1>
        <p>Signed in as {user.email}</p>
        <label class="field">
          Name
          <input
            value={form.name}
            required
            onInput={(e) => setForm({ ...form, name: e.currentTarget.value })}
          />
        </label>
        <label class="field">
          Phone
          <input
            type="tel"
            value={form.phone}
            onInput={(e) => setForm({ ...form, phone: e.currentTarget.value })}
          />
        </label>
        <button type="submit" class="primary">
          Save profile
        </button>
        {message && <p role="status">{message}</p>}
      </form>
      <button type="button" onClick={() => void logout()}>
        Log out
      </button>
    </div>
  );
}

function SignInPrompt({ what }: { what: string }) {
  const here = location.pathname;
  return (
    <p class="panel">
      <a href={`/login?next=${encodeURIComponent(here)}`}>Log in</a> to {what}.
    </p>
  );
}

/** Show details for a list of bookings, fetched once per show. */
function useShows(ids: string[]): Record<string, Show> {
  const [shows, setShows] = useState<Record<string, Show>>({});
  const key = [...new Set(ids)].sort().join(',');
  useEffect(() => {
    let isCurrent = true;
    void Promise.all(
      [...new Set(ids)].map((id) => api<{ show: Show }>('GET', `/api/shows/${encodeURIComponent(id)}`)),
    ).then((all) => {
      if (!isCurrent) return;
      const found: Record<string, Show> = {};
      for (const r of all) if (r.ok) found[r.value.show.id] = r.value.show;
      setShows(found);
    });
    return () => {
      isCurrent = false;
    };
  }, [key]);
  return shows;
}

const STATUS_LABEL: Record<Booking['status'], string> = {
  pending_payment: 'Awaiting payment',
  confirmed: 'Confirmed',
  cancelled: 'Cancelled',
  failed: 'Payment failed',
  expired: 'Expired',
};

export function BookingsPage() {
  const { user, isLoading } = useUser();
  const list = useApi<{ bookings: Booking[] }>(user ? '/api/me/bookings' : null);
  const shows = useShows((list.data?.bookings ?? []).map((b) => b.showId));
  const [message, setMessage] = useState<{ kind: 'info' | 'error'; text: string } | null>(null);
  useTitle('My bookings');
  if (isLoading) return <Loading what="bookings" />;
  if (!user) return <SignInPrompt what="see your bookings" />;
  const cancel = async (booking: Booking) => {
    if (!confirm(`Cancel booking of ${listJoin(booking.seats)}? The amount is refunded.`)) return;
    const res = await api<{ booking: Booking }>(
      'POST',
      `/api/bookings/${encodeURIComponent(booking.id)}/cancel`,
    );
    setMessage(
      res.ok
        ? {
            kind: 'info',
            text: `Booking cancelled. A refund of ${money(booking.amount.total, booking.amount.currency)} is on its way to your original payment method.`,
          }
        : {
            kind: 'error',
            text:
              res.error.status === 422
                ? `This booking can no longer be cancelled: ${res.error.message}.`
                : `We could not cancel it: ${res.error.message}.`,
          },
    );
    list.reload();
  };
  return (
    <div>
      <h1>My bookings</h1>
      {message && (
        <p class={`notice notice-${message.kind}`} role={message.kind === 'error' ? 'alert' : 'status'}>
          {message.text}
        </p>
      )}
      {list.error && <ErrorNote error={list.error} />}
      {!list.data ? (
        <Loading what="bookings" />
      ) : list.data.bookings.length === 0 ? (
        <p>
          No bookings yet. <a href="/">Find a movie</a>.
        </p>
      ) : (
        <ul class="booking-list">
          {list.data.bookings.map((b) => {
            const show = shows[b.showId];
            return (
              <li key={b.id} class="panel">
                <h2>{show?.movie.title ?? 'Show'}</h2>
                <p>
                  {show && `${show.theater.name} · ${showDateTime(show.startTime, zoneOf(show.theater))} · `}
                  Seats {listJoin(b.seats)} · {money(b.amount.total, b.amount.currency)}
                </p>
                <p>
                  Status: <strong>{STATUS_LABEL[b.status]}</strong>
                </p>
                <div class="actions">
                  {b.status === 'confirmed' && (
                    <>
                      <a class="button" href={`/tickets/${encodeURIComponent(b.id)}`}>
                        View ticket
                      </a>
                      <button type="button" onClick={() => void cancel(b)}>
                        Cancel booking
                      </button>
                    </>
                  )}
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}

export function TicketPage({ bookingId }: { bookingId: string }) {
  const booking = useApi<{ booking: Booking }>(`/api/bookings/${encodeURIComponent(bookingId)}`);
  const isConfirmed = booking.data?.booking.status === 'confirmed';
  const ticket = useApi<{ ticket: { code: string; qr: string } }>(
    isConfirmed ? `/api/bookings/${encodeURIComponent(bookingId)}/ticket` : null,
  );
  const showId = booking.data?.booking.showId;
  const show = useApi<{ show: Show }>(showId ? `/api/shows/${encodeURIComponent(showId)}` : null);
  const heading = useFocusOnMount<HTMLHeadingElement>();
  useTitle('Your ticket');
  if (booking.error) return <ErrorNote error={booking.error} />;
  if (!booking.data || !show.data) return <Loading what="ticket" />;
  const b = booking.data.booking;
  const s = show.data.show;
  return (
    <article class="ticket panel">
      <h1 ref={heading} tabIndex={-1}>
        {isConfirmed ? 'Your ticket' : `Booking ${STATUS_LABEL[b.status].toLowerCase()}`}
      </h1>
      <h2>{s.movie.title}</h2>
      <dl class="ticket-facts">
        <dt>Theater</dt>
        <dd>
          {s.theater.name}, {s.theater.address}
        </dd>
        <dt>Screen</dt>
        <dd>{s.screen.name}</dd>
        <dt>When</dt>
        <dd>{showDateTime(s.startTime, zoneOf(s.theater))}</dd>
        <dt>Seats</dt>
        <dd>{listJoin(b.seats)}</dd>
        <dt>Paid</dt>
        <dd>{money(b.amount.total, b.amount.currency)}</dd>
        <dt>Booking</dt>
        <dd>{b.id}</dd>
      </dl>
      {isConfirmed &&
        (ticket.data ? (
          <figure class="qr">
            <img
              src={ticket.data.ticket.qr}
              alt={`Ticket QR code for seats ${listJoin(b.seats)}`}
              width={240}
              height={240}
            />
            <figcaption>Show this code at the entrance.</figcaption>
          </figure>
        ) : ticket.error ? (
          <ErrorNote error={ticket.error} />
        ) : (
          <Loading what="QR code" />
        ))}
      <p>
        <a href="/bookings">My bookings</a>
      </p>
    </article>
  );
}
