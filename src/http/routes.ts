/**
 * @module routes
 * Registers every resource module on the app. Each module owns its paths, schemas and handlers.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { registerAdminRoutes } from './admin.js';
import { registerBookingRoutes } from './bookings.js';
import { registerCatalogRoutes } from './catalog.js';
import type { AppDeps, AppEnv } from './context.js';
import { registerHoldRoutes } from './holds.js';
import { registerLoadTestRoutes } from './load-test.js';
import { registerNotificationRoutes } from './notifications.js';
import { registerOfferRoutes } from './offers.js';
import { registerOnsaleRoutes } from './onsales.js';
import { registerUserRoutes } from './users.js';

type Register = (app: OpenAPIHono<AppEnv>, deps: AppDeps) => void;

const MODULES: Register[] = [
  registerUserRoutes,
  registerCatalogRoutes,
  registerAdminRoutes,
  registerHoldRoutes,
  registerBookingRoutes,
  registerOfferRoutes,
  registerNotificationRoutes,
  registerLoadTestRoutes,
  registerOnsaleRoutes,
];

export function registerRouteModules(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  for (const register of MODULES) register(app, deps);
}
