export * from './shows.js';
export * from './seats.js';
export * from './bookings.js';
export * from './webhooks.js';
