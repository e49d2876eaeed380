import pkg from '../package.json';

/** Version of Alki that writes a bundle (the @alki/bundle package version). */
export const ALKI_VERSION: string = pkg.version;
