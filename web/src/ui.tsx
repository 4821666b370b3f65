/** Small shared pieces: loading and error notes, page titles, and the signed-in user. */
import { useEffect, useState } from 'preact/hooks';
import { type ApiFailure, api, session, type User } from './api';

export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · BoxOffice`;
  }, [title]);
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status">
      Loading {what}…
    </p>
  );
}

export function ErrorNote({ error }: { error: ApiFailure }) {
  return (
    <p class="notice notice-error" role="alert">
      {error.status === 404 ? 'We could not find that. It may have been removed.' : error.message}
    </p>
  );
}

/** The signed-in user, refetched when the session changes; null when signed out. */
export function useUser(): { user: User | null; isLoading: boolean } {
  const [token, setToken] = useState(session.token);
  const [state, setState] = useState<{ user: User | null; isLoading: boolean }>({
    user: null,
    isLoading: Boolean(token),
  });
  useEffect(() => session.subscribe(() => setToken(session.token)), []);
  useEffect(() => {
    if (!token) return setState({ user: null, isLoading: false });
    let isCurrent = true;
    void api<{ user: User }>('GET', '/api/me').then((res) => {
      if (isCurrent) setState({ user: res.ok ? res.value.user : null, isLoading: false });
    });
    return () => {
      isCurrent = false;
    };
  }, [token]);
  return state;
}

export function useApi<T>(path: string | null): { data: T | null; error: ApiFailure | null; reload(): void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiFailure | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!path) return;
    let isCurrent = true;
    setError(null);
    void api<T>('GET', path).then((res) => {
      if (!isCurrent) return;
      if (res.ok) setData(res.value);
      else setError(res.error);
    });
    return () => {
      isCurrent = false;
    };
  }, [path, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}
