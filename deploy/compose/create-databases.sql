-- Run once by the PostgreSQL image when its data directory is new: one database a service,
-- each owned by the service's own role. The roles' passwords are set afterwards
-- (deploy/README.md, "Single host"), never here.
CREATE ROLE spa LOGIN;
CREATE ROLE routing LOGIN;
CREATE ROLE teams LOGIN;
CREATE DATABASE spa OWNER spa;
CREATE DATABASE routing OWNER routing;
CREATE DATABASE teams OWNER teams;
