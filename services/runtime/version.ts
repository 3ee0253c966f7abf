/** The platform release every service reports in Describe and Consul Meta. */
export const PLATFORM_VERSION = "0.1.0";
