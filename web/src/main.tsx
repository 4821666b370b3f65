/** The web app's shell: header with navigation, the page for the current path, and a skip link. */
import { render } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { BookingsPage, LoginPage, ProfilePage, RegisterPage, TicketPage } from './account-pages';
import { HomePage, MoviePage } from './browse-pages';
import { CheckoutPage } from './checkout-page';
import { match, onLinkClick, useLocation } from './router';
import { SeatMapPage } from './seat-map-page';
import { useUser } from './ui';
import './styles.css';

const ROUTES: [string, (params: Record<string, string>) => preact.JSX.Element][] = [
  ['/', () => <HomePage />],
  ['/movies/:id', (p) => <MoviePage movieId={p.id!} />],
  ['/shows/:id', (p) => <SeatMapPage showId={p.id!} />],
  ['/checkout/:holdId', (p) => <CheckoutPage holdId={p.holdId!} />],
  ['/tickets/:id', (p) => <TicketPage bookingId={p.id!} />],
  ['/bookings', () => <BookingsPage />],
  ['/login', () => <LoginPage />],
  ['/register', () => <RegisterPage />],
  ['/profile', () => <ProfilePage />],
];

function Page({ path }: { path: string }) {
  for (const [pattern, page] of ROUTES) {
    const params = pattern === '/' ? (path === '/' ? {} : null) : match(pattern, path);
    if (params) return page(params);
  }
  return (
    <div>
      <h1>Page not found</h1>
      <p>
        There is nothing at {path}. <a href="/">Go to the movies</a>.
      </p>
    </div>
  );
}

function App() {
  const { path } = useLocation();
  const { user } = useUser();
  const main = useRef<HTMLElement>(null);
  const isFirst = useRef(true);
  // After a navigation, focus moves to the new page so screen readers start reading it, unless the page
  // focused something of its own (its first field). Pages' effects run before this one.
  useEffect(() => {
    if (isFirst.current) {
      isFirst.current = false;
      return;
    }
    if (!document.activeElement || document.activeElement === document.body) main.current?.focus();
  }, [path]);
  return (
    // biome-ignore lint/a11y/useKeyWithClickEvents: delegated link clicks; Enter on a link fires click too.
    // biome-ignore lint/a11y/noStaticElementInteractions: the links inside are the interactive elements.
    <div onClick={onLinkClick}>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="site-header">
        <a class="brand" href="/">
          BoxOffice
        </a>
        <nav aria-label="Main">
          <a href="/">Movies</a>
          {user ? (
            <>
              <a href="/bookings">My bookings</a>
              <a href="/profile">{user.name}</a>
            </>
          ) : (
            <>
              <a href="/login">Log in</a>
              <a href="/register">Register</a>
            </>
          )}
        </nav>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Page path={path} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
