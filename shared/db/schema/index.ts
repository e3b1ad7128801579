export * from './shows.js';
export * from './seats.js';
export * from './bookings.js';
