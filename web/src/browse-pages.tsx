/** Browsing: the city's movies with filters, and a movie's theaters and show times by day. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type Movie, type ShowListing } from './api';
import { dayKey, money, showDate, showTime, zoneOf } from './format';
import { ErrorNote, Loading, useApi, useTitle } from './ui';

const CITY_KEY = 'boxoffice.city';
/** Most movies whose shows are fetched at once to filter by format. */
const FORMAT_FETCH_CONCURRENCY = 4;

export function useCity(): [string, (city: string) => void] {
  const [city, setCity] = useState(() => localStorage.getItem(CITY_KEY) ?? '');
  return [
    city,
    (next) => {
      localStorage.setItem(CITY_KEY, next);
      setCity(next);
    },
  ];
}

export function HomePage() {
  const [city, setCity] = useCity();
  const cities = useApi<{ cities: { name: string; theaters: number; movies: number }[] }>('/api/cities');
  useTitle(city ? `Movies in ${city}` : 'Choose your city');
  return (
    <div>
      <h1>{city ? `Movies in ${city}` : 'Where are you watching?'}</h1>
      {cities.error && <ErrorNote error={cities.error} />}
      {cities.data ? (
        <div class="field-row">
          <label>
            City
            <select value={city} onChange={(e) => setCity(e.currentTarget.value)}>
              <option value="">Choose a city</option>
              {cities.data.cities.map((c) => (
                <option key={c.name} value={c.name}>
                  {c.name} ({c.movies} movies)
                </option>
              ))}
            </select>
          </label>
        </div>
      ) : (
        !cities.error && <Loading what="cities" />
      )}
      {city && <MovieList city={city} />}
    </div>
  );
}

function MovieList({ city }: { city: string }) {
  const [language, setLanguage] = useState('');
  const [genre, setGenre] = useState('');
  const [format, setFormat] = useState('');
  const [minRating, setMinRating] = useState('');
  const all = useApi<{ movies: Movie[] }>(`/api/movies?city=${encodeURIComponent(city)}`);
  const query = new URLSearchParams({ city });
  if (language) query.set('language', language);
  if (genre) query.set('genre', genre);
  if (minRating) query.set('minRating', minRating);
  const filtered = useApi<{ movies: Movie[] }>(`/api/movies?${query}`);
  const formats = useFormats(city, all.data?.movies);
  const languages = useMemo(() => unique((all.data?.movies ?? []).map((m) => m.language)), [all.data]);
  const genres = useMemo(() => unique((all.data?.movies ?? []).flatMap((m) => m.genres)), [all.data]);
  const movies = (filtered.data?.movies ?? []).filter(
    (m) => !format || formats.byMovie[m.id]?.includes(format),
  );

  return (
    <section aria-labelledby="movies-title">
      <h2 id="movies-title" class="visually-hidden">
        Now showing
      </h2>
      <form class="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
        <Select label="Language" value={language} onChange={setLanguage} options={languages} />
        <Select label="Genre" value={genre} onChange={setGenre} options={genres} />
        <Select label="Format" value={format} onChange={setFormat} options={formats.all} />
        <Select
          label="Rating"
          value={minRating}
          onChange={setMinRating}
          options={['6', '7', '8', '9']}
          format={(v) => `${v}+`}
        />
      </form>
      {filtered.error && <ErrorNote error={filtered.error} />}
      {!filtered.data ? (
        <Loading what="movies" />
      ) : movies.length === 0 ? (
        <p>No movies match these filters in {city}. Try removing a filter.</p>
      ) : (
        <ul class="movie-grid">
          {movies.map((m) => (
            <li key={m.id} class="movie-card">
              <a href={`/movies/${encodeURIComponent(m.id)}`}>
                <h3>{m.title}</h3>
              </a>
              <p>
                {m.language} · {m.certificate} · {m.durationMin} min
              </p>
              <p>{m.genres.join(', ')}</p>
              <p>
                <Rating rating={m.rating} votes={m.votes} />
              </p>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** Format is a property of shows, not movies: the city's shows of each movie say which formats it has. */
function useFormats(
  city: string,
  movies: Movie[] | undefined,
): { all: string[]; byMovie: Record<string, string[]> } {
  const [byMovie, setByMovie] = useState<Record<string, string[]>>({});
  useEffect(() => {
    if (!movies) return;
    let isCurrent = true;
    const queue = [...movies];
    const found: Record<string, string[]> = {};
    const worker = async () => {
      for (let m = queue.shift(); m; m = queue.shift()) {
        const res = await api<{ shows: ShowListing[] }>(
          'GET',
          `/api/movies/${encodeURIComponent(m.id)}/shows?city=${encodeURIComponent(city)}`,
        );
        if (res.ok) found[m.id] = unique(res.value.shows.map((s) => s.format));
      }
    };
    void Promise.all(Array.from({ length: FORMAT_FETCH_CONCURRENCY }, worker)).then(() => {
      if (isCurrent) setByMovie(found);
    });
    return () => {
      isCurrent = false;
    };
  }, [city, movies]);
  return { all: unique(Object.values(byMovie).flat()), byMovie };
}

function Select(props: {
  label: string;
  value: string;
  onChange(v: string): void;
  options: string[];
  format?: (v: string) => string;
}) {
  return (
    <label>
      {props.label}
      <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        <option value="">Any</option>
        {props.options.map((o) => (
          <option key={o} value={o}>
            {props.format ? props.format(o) : o}
          </option>
        ))}
      </select>
    </label>
  );
}

function unique(values: string[]): string[] {
  return [...new Set(values)].sort();
}

export function MoviePage({ movieId }: { movieId: string }) {
  const [city] = useCity();
  const movie = useApi<{ movie: Movie }>(`/api/movies/${encodeURIComponent(movieId)}`);
  const shows = useApi<{ shows: ShowListing[] }>(
    `/api/movies/${encodeURIComponent(movieId)}/shows${city ? `?city=${encodeURIComponent(city)}` : ''}`,
  );
  const [day, setDay] = useState('');
  useTitle(movie.data?.movie.title ?? 'Movie');
  const byDay = useMemo(() => {
    const days = new Map<string, ShowListing[]>();
    for (const s of shows.data?.shows ?? []) {
      const key = dayKey(s.startTime, zoneOf(s.theater));
      days.set(key, [...(days.get(key) ?? []), s]);
    }
    return days;
  }, [shows.data]);
  if (movie.error) return <ErrorNote error={movie.error} />;
  if (!movie.data) return <Loading what="movie" />;
  const m = movie.data.movie;
  const chosenDay = byDay.has(day) ? day : ([...byDay.keys()][0] ?? '');
  const dayShows = byDay.get(chosenDay) ?? [];
  const theaters = new Map<string, ShowListing[]>();
  for (const s of dayShows) theaters.set(s.theater.id, [...(theaters.get(s.theater.id) ?? []), s]);

  return (
    <div>
      <h1>{m.title}</h1>
      <p>
        {m.language} · {m.certificate} · {m.durationMin} min · {m.genres.join(', ')} ·{' '}
        <Rating rating={m.rating} votes={m.votes} />
      </p>
      <p>{m.description}</p>
      <h2>Show times{city ? ` in ${city}` : ''}</h2>
      {shows.error && <ErrorNote error={shows.error} />}
      {!shows.data ? (
        <Loading what="show times" />
      ) : byDay.size === 0 ? (
        <p>No upcoming shows{city ? ` in ${city}` : ''}. Try another city from the home page.</p>
      ) : (
        <>
          <fieldset class="day-tabs">
            <legend class="visually-hidden">Day</legend>
            {[...byDay.entries()].map(([key, list]) => (
              <button type="button" key={key} aria-pressed={key === chosenDay} onClick={() => setDay(key)}>
                {showDate(list[0]!.startTime, zoneOf(list[0]!.theater))}
              </button>
            ))}
          </fieldset>
          <ul class="theater-list">
            {[...theaters.values()].map((list) => (
              <li key={list[0]!.theater.id}>
                <h3>{list[0]!.theater.name}</h3>
                <ul class="show-times">
                  {list.map((s) => (
                    <li key={s.id}>
                      <a class="show-time" href={`/shows/${encodeURIComponent(s.id)}`}>
                        {showTime(s.startTime, zoneOf(s.theater))} · {s.format}
                        <span class="muted">
                          {' '}
                          from {money(s.priceFrom, s.currency)}, {s.seatsAvailable} seats left
                        </span>
                      </a>
                    </li>
                  ))}
                </ul>
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

/** A new movie has no votes yet: "★ 0.0" would read as a bad score. */
function Rating({ rating, votes }: { rating: number; votes: number }) {
  if (votes === 0) return <span class="muted">Not rated yet</span>;
  return (
    <>
      <span aria-hidden="true">★ {rating.toFixed(1)}</span>
      <span class="visually-hidden">Rated {rating.toFixed(1)} out of 10</span>{' '}
      <span class="muted">
        ({votes} {votes === 1 ? 'vote' : 'votes'})
      </span>
    </>
  );
}
