// Read by relay-compiler only (never executed): a paginated @connection over the
// connections, @refetchable fragments on UserOAuthSourceConnection and Source (refetched
// through node(id:)), and an update mutation. relay.mjs runs the compiled artifacts.
/* global graphql */

graphql`
  fragment App_query on Query
  @argumentDefinitions(count: { type: "Int", defaultValue: 10 }, cursor: { type: "String" })
  @refetchable(queryName: "AppConnectionsPaginationQuery") {
    userOAuthSourceConnections(first: $count, after: $cursor)
      @connection(key: "App_userOAuthSourceConnections") {
      edges {
        node {
          id
          ...App_connection
        }
      }
    }
  }
`;

graphql`
  fragment App_connection on UserOAuthSourceConnection
  @refetchable(queryName: "AppConnectionRefetchQuery") {
    id
    pk
    identifier
    source {
      ...App_source
    }
  }
`;

graphql`
  fragment App_source on Source @refetchable(queryName: "AppSourceRefetchQuery") {
    id
    slug
    name
  }
`;

graphql`
  query AppQuery {
    me {
      id
      username
    }
    ...App_query
  }
`;

graphql`
  mutation AppUpdateMutation($id: ID!, $identifier: String!) {
    updateUserOAuthSourceConnection(id: $id, input: { identifier: $identifier }) {
      id
      identifier
    }
  }
`;

graphql`
  mutation AppRemoveMutation($id: ID!) {
    removeUserOAuthSourceConnection(id: $id) {
      deletedId @deleteRecord
    }
  }
`;
