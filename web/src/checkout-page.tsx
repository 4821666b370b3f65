/**
 * Checkout (/checkout/:holdId): the held seats, a promo code with the price breakdown, then payment by
 * card, UPI or wallet through the simulated provider. A decline says what happened and what to do next.
 */
import { useState } from 'preact/hooks';
import {
  type ApiFailure,
  api,
  type Booking,
  type Hold,
  newIdempotencyKey,
  type PaymentMethod,
  type SeatMap,
  type Show,
} from './api';
import { listJoin, money, showDateTime, zoneOf } from './format';
import { navigate } from './router';
import { Loading, useApi, useTitle } from './ui';

type Amount = Booking['amount'];

const DECLINES: Record<string, string> = {
  card_declined: 'Your bank declined the card. Try another card, or pay by UPI or wallet.',
  insufficient_funds: 'There is not enough money on this card or wallet. Try another way to pay.',
  lost_card: 'This card was reported lost. Use another card.',
  stolen_card: 'This card was reported stolen. Use another card.',
  expired_card: 'This card has expired. Use another card.',
  incorrect_cvc:
    'The security code (CVC) is wrong. Check the three digits on the back of the card and try again.',
  processing_error: 'The bank had a problem processing the card. Try again in a moment, or use another card.',
  upi_declined: 'The UPI payment was declined in your UPI app. Try again, or pay by card.',
  wallet_declined: 'The wallet declined the payment. Try another wallet, or pay by card.',
};

export function CheckoutPage({ holdId }: { holdId: string }) {
  const hold = useApi<{ hold: Hold }>(`/api/holds/${encodeURIComponent(holdId)}`);
  const showId = hold.data?.hold.showId;
  const show = useApi<{ show: Show }>(showId ? `/api/shows/${encodeURIComponent(showId)}` : null);
  const map = useApi<SeatMap>(showId ? `/api/shows/${encodeURIComponent(showId)}/seats` : null);
  useTitle('Checkout');
  if (hold.error)
    return (
      <div>
        <h1>Checkout</h1>
        <p class="notice notice-error" role="alert">
          {hold.error.code === 'HOLD_EXPIRED' || hold.error.status === 404
            ? 'Your hold on these seats has ended, so they were released.'
            : hold.error.message}{' '}
          <a href="/">Choose a show again</a>.
        </p>
      </div>
    );
  if (!hold.data || !show.data || !map.data) return <Loading what="checkout" />;
  const prices = new Map(map.data.seats.map((seat) => [seat.id, seat.price ?? 0]));
  const subtotal = hold.data.hold.seats.reduce((sum, id) => sum + (prices.get(id) ?? 0), 0);
  return <Checkout hold={hold.data.hold} show={show.data.show} subtotal={subtotal} />;
}

function Checkout({ hold, show, subtotal }: { hold: Hold; show: Show; subtotal: number }) {
  const [promo, setPromo] = useState('');
  const [preview, setPreview] = useState<{ code: string; amount: Amount } | null>(null);
  const [promoError, setPromoError] = useState('');
  const [method, setMethod] = useState<PaymentMethod>('card');
  const [booking, setBooking] = useState<Booking | null>(null);
  const [error, setError] = useState<{ text: string; isFinal: boolean } | null>(null);
  const [isBusy, setIsBusy] = useState(false);

  const applyPromo = async (e: Event) => {
    e.preventDefault();
    setPromoError('');
    const code = promo.trim();
    if (!code) return setPreview(null);
    const res = await api<{ amount: Amount }>('POST', '/api/offers/validate', {
      code,
      showId: show.id,
      seats: hold.seats,
    });
    if (res.ok) setPreview({ code, amount: res.value.amount });
    else {
      setPreview(null);
      setPromoError(`${code} cannot be used here: ${res.error.message}.`);
    }
  };

  const startPayment = async (e: Event) => {
    e.preventDefault();
    setIsBusy(true);
    setError(null);
    const res = await api<{ booking: Booking }>(
      'POST',
      '/api/bookings',
      { holdId: hold.id, paymentMethod: method, ...(preview ? { promoCode: preview.code } : {}) },
      { 'idempotency-key': `${hold.id}-${method}-${preview?.code ?? ''}` },
    );
    setIsBusy(false);
    if (res.ok) setBooking(res.value.booking);
    else setError({ text: bookingFailure(res.error), isFinal: res.error.status === 410 });
  };

  return (
    <div class="checkout">
      <h1>Checkout</h1>
      <section class="panel" aria-label="Your tickets">
        <h2>{show.movie.title}</h2>
        <p>
          {show.theater.name}, {show.screen.name} · {showDateTime(show.startTime, zoneOf(show.theater))}
        </p>
        <p>Seats: {listJoin(hold.seats)}</p>
      </section>
      {error && (
        <p class="notice notice-error" role="alert">
          {error.text}
          {error.isFinal && (
            <>
              {' '}
              <a href={`/shows/${encodeURIComponent(show.id)}`}>Choose seats again</a>
            </>
          )}
        </p>
      )}
      {booking ? (
        <PaymentForm booking={booking} show={show} />
      ) : (
        <>
          <form class="panel" onSubmit={applyPromo}>
            <h2>Promo code</h2>
            <div class="field-row">
              <label>
                Promo code
                <input value={promo} onInput={(e) => setPromo(e.currentTarget.value)} autocomplete="off" />
              </label>
              <button type="submit">Apply code</button>
            </div>
            {promoError && (
              <p class="field-error" role="alert">
                {promoError}
              </p>
            )}
          </form>
          <Breakdown
            amount={
              preview?.amount ?? {
                subtotal,
                discount: 0,
                fees: Number.NaN,
                total: Number.NaN,
                currency: show.currency,
              }
            }
          />
          <form class="panel" onSubmit={startPayment}>
            <fieldset>
              <legend>How would you like to pay?</legend>
              {(['card', 'upi', 'wallet'] as const).map((m) => (
                <label key={m} class="radio">
                  <input
                    type="radio"
                    name="method"
                    value={m}
                    checked={method === m}
                    onChange={() => setMethod(m)}
                  />
                  {m === 'card' ? 'Card' : m === 'upi' ? 'UPI' : 'Wallet'}
                </label>
              ))}
            </fieldset>
            <button type="submit" class="primary" disabled={isBusy}>
              Continue to payment
            </button>
          </form>
        </>
      )}
    </div>
  );
}

function Breakdown({ amount }: { amount: Amount }) {
  const show = (n: number) => (Number.isNaN(n) ? 'shown before you pay' : money(n, amount.currency));
  return (
    <section class="panel" aria-label="Price breakdown">
      <h2>Price</h2>
      <dl class="breakdown">
        <dt>Tickets</dt>
        <dd>{show(amount.subtotal)}</dd>
        {amount.discount > 0 && (
          <>
            <dt>Discount</dt>
            <dd>−{money(amount.discount, amount.currency)}</dd>
          </>
        )}
        <dt>Convenience fee</dt>
        <dd>{show(amount.fees)}</dd>
        <dt>Total</dt>
        <dd>
          <strong>{show(amount.total)}</strong>
        </dd>
      </dl>
    </section>
  );
}

function bookingFailure(error: ApiFailure): string {
  if (error.status === 410) return 'Your hold on these seats ended before payment, so they were released.';
  if (error.code === 'OFFER_INVALID')
    return `The promo code cannot be used: ${error.message}. Remove it and try again.`;
  return `We could not start the payment: ${error.message}.`;
}

function PaymentForm({ booking, show }: { booking: Booking; show: Show }) {
  const method = booking.paymentMethod;
  const [card, setCard] = useState({ number: '', expiry: '', cvc: '' });
  const [upiId, setUpiId] = useState('');
  const [walletId, setWalletId] = useState('');
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [decline, setDecline] = useState<string | null>(null);
  const [pendingText, setPendingText] = useState('');
  const [isBusy, setIsBusy] = useState(false);

  const pay = async (e: Event) => {
    e.preventDefault();
    setIsBusy(true);
    setFieldErrors({});
    const proof =
      method === 'card'
        ? {
            card: {
              number: card.number.replace(/\s+/g, ''),
              expiry: card.expiry.trim(),
              cvc: card.cvc.trim(),
            },
          }
        : method === 'upi'
          ? { upiId: upiId.trim() }
          : { walletId: walletId.trim() };
    const res = await api<{ booking: Booking; paymentStatus?: string }>(
      'POST',
      '/api/payments',
      { bookingId: booking.id, method, ...proof },
      { 'idempotency-key': newIdempotencyKey() },
    );
    setIsBusy(false);
    if (res.ok) {
      if (res.value.booking.status === 'confirmed')
        return navigate(`/tickets/${encodeURIComponent(booking.id)}`);
      setPendingText(
        'Waiting for you to approve the payment in your app. This page updates when it is done.',
      );
      return void pollUntilSettled(booking.id, setPendingText);
    }
    const err = res.error;
    if (err.code === 'INVALID_CARD' || err.code === 'VALIDATION_FAILED') {
      const fields = (err.details.fields as Record<string, string> | undefined) ?? {};
      setFieldErrors(Object.keys(fields).length > 0 ? fields : { form: err.message });
      return;
    }
    if (err.code === 'PAYMENT_FAILED') {
      const reason = String(err.details.reason ?? '');
      setDecline(
        `${DECLINES[reason] ?? `The payment was declined (${err.message}).`} Nothing was charged, and your seats were released: choose them again to retry.`,
      );
      return;
    }
    setDecline(
      err.status === 410
        ? 'Your hold ended before the payment completed, so the seats were released. Any charge is refunded.'
        : `The payment did not go through: ${err.message}. Try again in a moment.`,
    );
  };

  if (decline)
    return (
      <div class="notice notice-error" role="alert">
        <p>{decline}</p>
        <p>
          <a class="button" href={`/shows/${encodeURIComponent(show.id)}`}>
            Choose seats again
          </a>
        </p>
      </div>
    );
  return (
    <form class="panel" onSubmit={pay} aria-label="Payment">
      <Breakdown amount={booking.amount} />
      {method === 'card' && (
        <fieldset>
          <legend>Card details</legend>
          <p class="hint">Test card: 4242 4242 4242 4242, any future expiry, any CVC.</p>
          <Field label="Card number" error={fieldErrors['card.number'] ?? fieldErrors.number}>
            <input
              inputMode="numeric"
              autocomplete="cc-number"
              value={card.number}
              onInput={(e) => setCard({ ...card, number: e.currentTarget.value })}
              required
            />
          </Field>
          <div class="field-row">
            <Field label="Expiry (MM/YY)" error={fieldErrors['card.expiry'] ?? fieldErrors.expiry}>
              <input
                autocomplete="cc-exp"
                placeholder="MM/YY"
                value={card.expiry}
                onInput={(e) => setCard({ ...card, expiry: e.currentTarget.value })}
                required
              />
            </Field>
            <Field label="CVC" error={fieldErrors['card.cvc'] ?? fieldErrors.cvc}>
              <input
                inputMode="numeric"
                autocomplete="cc-csc"
                value={card.cvc}
                onInput={(e) => setCard({ ...card, cvc: e.currentTarget.value })}
                required
              />
            </Field>
          </div>
        </fieldset>
      )}
      {method === 'upi' && (
        <Field label="UPI ID" error={fieldErrors.upiId}>
          <input
            value={upiId}
            placeholder="name@bank"
            onInput={(e) => setUpiId(e.currentTarget.value)}
            required
          />
        </Field>
      )}
      {method === 'wallet' && (
        <Field label="Wallet ID" error={fieldErrors.walletId}>
          <input value={walletId} onInput={(e) => setWalletId(e.currentTarget.value)} required />
        </Field>
      )}
      {fieldErrors.form && (
        <p class="field-error" role="alert">
          {fieldErrors.form}
        </p>
      )}
      {pendingText ? (
        <p role="status">{pendingText}</p>
      ) : (
        <button type="submit" class="primary" disabled={isBusy}>
          Pay {money(booking.amount.total, booking.amount.currency)}
        </button>
      )}
    </form>
  );
}

function Field({
  label,
  error,
  children,
}: {
  label: string;
  error?: string;
  children: preact.ComponentChildren;
}) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control is the child passed in.
    <label class="field">
      {label}
      {children}
      {error && (
        <span class="field-error" role="alert">
          {error}
        </span>
      )}
    </label>
  );
}

/** A UPI collect or wallet approval settles by the provider's webhook; poll the booking, bounded. */
async function pollUntilSettled(bookingId: string, say: (text: string) => void): Promise<void> {
  for (let attempt = 0; attempt < 60; attempt++) {
    await new Promise((r) => setTimeout(r, 2000));
    const res = await api<{ booking: Booking }>('GET', `/api/bookings/${encodeURIComponent(bookingId)}`);
    if (!res.ok) continue;
    if (res.value.booking.status === 'confirmed')
      return navigate(`/tickets/${encodeURIComponent(bookingId)}`);
    if (res.value.booking.status !== 'pending_payment')
      return say(
        `The payment was not completed (${res.value.booking.status}). Choose your seats again to retry.`,
      );
  }
  say('The payment is still waiting. Check My bookings later; you are only charged once it completes.');
}
